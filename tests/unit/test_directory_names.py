"""DirectoryNames: one `_id` search per type, inline names win (no servers)."""

from __future__ import annotations

import pytest

from fhir_portal.fhir import FhirError
from fhir_portal.fhir.gateway import SearchPage
from fhir_portal.resources.directory import DirectoryNames

STORE = {
    "Practitioner/d1": {"resourceType": "Practitioner", "id": "d1",
                        "name": [{"given": ["Ida"], "family": "Holm"}]},
    "Practitioner/d2": {"resourceType": "Practitioner", "id": "d2",
                        "name": [{"given": ["Ole"], "family": "Berg"}]},
    "PractitionerRole/r1": {"resourceType": "PractitionerRole", "id": "r1",
                            "practitioner": {"reference": "Practitioner/d2", "display": "Ole Berg"}},
    "Location/l1": {"resourceType": "Location", "id": "l1", "name": "Clinic North"},
}


class Reader:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    async def search(self, resource_type: str, params: dict | None = None) -> SearchPage:
        ids = str((params or {})["_id"])
        self.calls.append((resource_type, ids))
        if self.fail:
            raise FhirError("down")
        found = [STORE[f"{resource_type}/{i}"] for i in ids.split(",")
                 if f"{resource_type}/{i}" in STORE]
        return SearchPage(resources=found)


async def test_one_search_per_type_for_any_number_of_references() -> None:
    reader = Reader()
    names = DirectoryNames(reader)
    await names.load(["Practitioner/d1", {"reference": "http://x/fhir/Practitioner/d2"},
                      "PractitionerRole/r1", "Location/l1", "Practitioner/gone", "Patient/p1"])
    assert sorted(reader.calls) == [("Location", "l1"), ("Practitioner", "d1,d2,gone"),
                                    ("PractitionerRole", "r1")]
    assert names.name("Practitioner/d1") == "Ida Holm"
    assert names.name({"reference": "PractitionerRole/r1"}) == "Ole Berg"
    assert names.name("Location/l1") == "Clinic North"
    assert names.name("Practitioner/gone") == "" and names.resource("Practitioner/gone") is None
    assert names.name("Patient/p1") == ""  # not a type it looks up
    await names.load(["Practitioner/d1", "Location/l1"])
    assert len(reader.calls) == 3  # nothing read twice


async def test_inline_names_win_and_save_the_lookup() -> None:
    reader = Reader()
    names = DirectoryNames(reader)
    names.seed({"reference": "Practitioner/d1", "display": "Dr. Holm"})
    await names.load(["Practitioner/d1"], unnamed_only=True)
    assert reader.calls == []
    assert names.name("Practitioner/d1") == "Dr. Holm"


async def test_a_failed_search_is_an_error_unless_lenient() -> None:
    with pytest.raises(FhirError):
        await DirectoryNames(Reader(fail=True)).load(["Practitioner/d1"])
    lenient = DirectoryNames(Reader(fail=True), lenient=True)
    await lenient.load(["Practitioner/d1"])
    assert lenient.name("Practitioner/d1") == ""
