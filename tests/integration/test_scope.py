"""The gateway's patient scope against the real server: A never sees B."""

from __future__ import annotations

import pytest

from fhir_portal.fhir import FhirConflict, FhirForbidden, FhirNotFound, PatientScope
from fhir_portal.fhir.scope import COMPARTMENT

ANNA, BJORN = "pat-anna", "pat-bjorn"


@pytest.mark.parametrize("resource_type", sorted(COMPARTMENT))
async def test_search_in_a_scope_never_returns_another_patients_resources(gateway, resource_type):
    scope = PatientScope(gateway, ANNA)
    # even when the caller asks for Bjørn explicitly, the compartment parameter wins
    compartment = COMPARTMENT[resource_type]
    hostile = {param: f"Patient/{BJORN}" for param in compartment.params}
    for via in compartment.params:
        page = await scope.search(resource_type, hostile, via=via, all_pages=True)
        for resource in page.resources:
            assert scope.owns(resource), f"{resource_type}/{resource['id']} leaked"


async def test_anna_has_records_and_bjorns_are_not_found(gateway):
    anna = PatientScope(gateway, ANNA)
    bjorn = PatientScope(gateway, BJORN)
    anna_conditions = (await anna.search("Condition")).resources
    bjorn_conditions = (await bjorn.search("Condition")).resources
    assert anna_conditions and bjorn_conditions
    for condition in bjorn_conditions:
        with pytest.raises(FhirNotFound):
            await anna.read("Condition", condition["id"])
        # and the unscoped gateway proves the resource does exist
        assert (await gateway.read("Condition", condition["id"]))["id"] == condition["id"]
    with pytest.raises(FhirNotFound):
        await anna.read("Patient", BJORN)
    assert (await anna.read("Patient", ANNA))["id"] == ANNA


async def test_reading_a_type_outside_the_compartment_is_not_found(gateway):
    anna = PatientScope(gateway, ANNA)
    practitioner = (await gateway.search("Practitioner", {"_count": "1"})).resources[0]
    with pytest.raises(FhirNotFound):
        await anna.read("Practitioner", practitioner["id"])
    # but the directory reader serves it
    assert (await anna.directory.read("Practitioner", practitioner["id"]))["id"] == practitioner["id"]


async def test_writes_outside_the_compartment_are_refused(gateway):
    anna = PatientScope(gateway, ANNA)
    foreign = {
        "resourceType": "Condition",
        "subject": {"reference": f"Patient/{BJORN}"},
        "code": {"text": "should never be written"},
    }
    with pytest.raises(FhirForbidden):
        await anna.create(foreign)
    bjorn_condition = (await PatientScope(gateway, BJORN).search("Condition")).resources[0]
    hijack = {**bjorn_condition, "subject": {"reference": f"Patient/{ANNA}"}}
    with pytest.raises(FhirNotFound):
        await anna.update(hijack, if_match=None)


async def test_everything_contains_only_the_patients_compartment(gateway):
    anna = PatientScope(gateway, ANNA)
    bundle = await anna.everything()
    types = {entry["resource"]["resourceType"] for entry in bundle["entry"]}
    assert {"Patient", "Condition", "Encounter", "CarePlan"} <= types
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            assert resource["id"] == ANNA


async def test_directory_refuses_patient_data(gateway):
    anna = PatientScope(gateway, ANNA)
    with pytest.raises(FhirForbidden):
        await anna.directory.search("Condition")
    visit_note = (await anna.search("DocumentReference")).resources[0]
    with pytest.raises(FhirNotFound):
        await anna.directory.read("DocumentReference", visit_note["id"])


async def test_a_business_identifier_reused_by_another_patient_never_returns_theirs(gateway):
    import uuid

    key = f"shared-{uuid.uuid4().hex}"
    condition = f"identifier=http://fhir-portal.example.org/fhir/message-id|{key}"

    def message(patient_id: str) -> dict:
        return {
            "resourceType": "Communication", "status": "completed",
            "identifier": [{"system": "http://fhir-portal.example.org/fhir/message-id", "value": key}],
            "subject": {"reference": f"Patient/{patient_id}"},
            "payload": [{"contentString": f"private text of {patient_id}"}],
        }

    anna = await PatientScope(gateway, ANNA).create(message(ANNA), if_none_exist=condition)
    bjorn = await PatientScope(gateway, BJORN).create(message(BJORN), if_none_exist=condition)
    assert bjorn["id"] != anna["id"]
    assert bjorn["payload"][0]["contentString"] == f"private text of {BJORN}"
    # and a retry by Anna still finds her own first message
    again = await PatientScope(gateway, ANNA).create(message(ANNA), if_none_exist=condition)
    assert again["id"] == anna["id"]


async def test_a_version_from_a_form_is_never_sent_as_a_header(gateway):
    anna = PatientScope(gateway, ANNA)
    patient = await anna.patient(fresh=True)
    with pytest.raises(FhirConflict):
        await anna.update(patient, if_match='1"\r\nX-Injected: yes')


async def test_position_in_gives_only_a_place_and_only_for_the_patients_own(gateway):
    import uuid

    system = "http://fhir-portal.example.org/fhir/message-id"
    key = f"line-{uuid.uuid4().hex}"

    def message(patient_id: str, sent: str) -> dict:
        return {
            "resourceType": "Communication", "status": "completed", "sent": sent,
            "identifier": [{"system": system, "value": key}],
            "subject": {"reference": f"Patient/{patient_id}"},
        }

    seen: list[tuple[str, list[dict]]] = []
    anna = PatientScope(gateway, ANNA, on_access=lambda a, r: seen.append((a, r)))
    bjorn = PatientScope(gateway, BJORN)
    first = await bjorn.create(message(BJORN, "2026-01-01T08:00:00Z"))
    second = await anna.create(message(ANNA, "2026-01-01T09:00:00Z"))
    seen.clear()
    params = {"identifier": f"{system}|{key}"}
    assert await anna.position_in(second, params, order_by="sent") == 2
    assert await bjorn.position_in(first, params, order_by="sent") == 1
    assert seen == []  # nothing of Bjørn's was handed to Anna's scope
    with pytest.raises(FhirNotFound):
        await anna.position_in(first, params, order_by="sent")
