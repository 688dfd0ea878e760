"""The profile and fixture files are valid FHIR and hang together, without a server.

Every file under ``profiles/`` and ``fixtures/`` is a ``collection`` Bundle whose
resources carry client-assigned ids. After the date tokens are expanded for today, each
resource must parse with its fhir.resources model, every id must be unique, and every
relative reference must point at a resource the loader will have PUT.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_portal.provision.dates import expand

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Europe/Copenhagen")
BASE = "http://fhir-portal.example.org/fhir"
APPOINTMENT_KIND = f"{BASE}/CodeSystem/appointment-kind"
COMMUNICATION_CATEGORY = f"{BASE}/CodeSystem/communication-category"
TASK_CODE = f"{BASE}/CodeSystem/task-code"
MESSAGE_ID = f"{BASE}/message-id"
SPECIALTIES = {"419772000", "394579002", "394582007", "394537008", "394587001"}
RECORD_TYPES = {
    "Patient",
    "MedicationStatement",
    "MedicationRequest",
    "AllergyIntolerance",
    "Condition",
    "Encounter",
    "DocumentReference",
    "CarePlan",
    "CareTeam",
    "Task",
    "Communication",
}
REFERENCE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})$")

PROFILE_FILES = sorted((ROOT / "profiles").glob("*.json"))
DIRECTORY_FILE = ROOT / "fixtures" / "directory.json"
PATIENT_FILES = sorted((ROOT / "fixtures" / "patients").glob("*.json"))
FIXTURE_FILES = sorted((ROOT / "fixtures").rglob("*.json"))
ALL_FILES = PROFILE_FILES + FIXTURE_FILES


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _load(path: Path, today: date | None = None) -> list[dict[str, Any]]:
    bundle = json.loads(path.read_text("utf-8"))
    expanded = expand(bundle, today or datetime.now(TZ).date(), TZ)
    return [entry["resource"] for entry in expanded["entry"]]


@pytest.fixture(scope="module")
def everything() -> dict[str, list[dict[str, Any]]]:
    return {_rel(path): _load(path) for path in ALL_FILES}


@pytest.fixture(scope="module")
def by_key(everything: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {
        f"{r['resourceType']}/{r['id']}": r for resources in everything.values() for r in resources
    }


def _walk_references(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            found.append(ref)
        for key, item in value.items():
            if key != "contained":
                found.extend(_walk_references(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_walk_references(item))
    return found


def _codes(concept: dict[str, Any] | None, system: str) -> set[str]:
    if not concept:
        return set()
    return {c["code"] for c in concept.get("coding", []) if c.get("system") == system}


def test_the_expected_files_exist() -> None:
    names = {p.name for p in PROFILE_FILES}
    assert {"codesystems.json", "valuesets.json", "structuredefinitions.json"} <= names
    assert DIRECTORY_FILE.exists()
    assert {p.stem for p in PATIENT_FILES} >= {"anna", "bjorn", "chloe"}


@pytest.mark.parametrize("path", ALL_FILES, ids=_rel)
def test_file_is_a_collection_bundle_of_resources_with_ids(path: Path) -> None:
    bundle = json.loads(path.read_text("utf-8"))
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    assert bundle["entry"], "empty bundle"
    for entry in bundle["entry"]:
        assert set(entry) == {"resource"}, "entries hold only the resource (no fullUrl)"
        assert entry["resource"]["id"]


@pytest.mark.parametrize("path", ALL_FILES, ids=_rel)
def test_every_resource_parses_with_its_r4b_model_after_expansion(path: Path) -> None:
    for resource in _load(path):
        text = json.dumps(resource)
        assert "${" not in text, f"unexpanded token in {resource['id']}"
        model = get_fhir_model_class(resource["resourceType"])
        parsed = model.model_validate(resource)
        assert getattr(parsed, "id", None) == resource["id"]


def test_ids_are_unique_and_contain_a_letter(everything: dict[str, list[dict]]) -> None:
    keys = Counter(
        f"{r['resourceType']}/{r['id']}" for resources in everything.values() for r in resources
    )
    assert not [k for k, n in keys.items() if n > 1]
    for key in keys:
        rid = key.split("/", 1)[1]
        assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", rid), key
        assert re.search(r"[A-Za-z]", rid), f"{key}: id must contain a letter"


def test_every_reference_resolves(
    everything: dict[str, list[dict]], by_key: dict[str, dict]
) -> None:
    problems: list[str] = []
    for file, resources in everything.items():
        for resource in resources:
            where = f"{file}: {resource['resourceType']}/{resource['id']}"
            contained = {c["id"] for c in resource.get("contained", [])}
            for ref in _walk_references(resource):
                if ref.startswith("#"):
                    if ref[1:] not in contained:
                        problems.append(f"{where} -> {ref} (no such contained resource)")
                    continue
                match = REFERENCE.match(ref)
                if match is None:
                    problems.append(f"{where} -> {ref} (not a relative Type/id reference)")
                elif ref not in by_key:
                    problems.append(f"{where} -> {ref} (not in profiles or fixtures)")
            for item in resource.get("contained", []):
                used = f"#{item['id']}" in _walk_references(resource)
                if not used:
                    problems.append(f"{where}: contained {item['id']} is never referenced")
    assert not problems, "\n".join(problems)


def test_conformance_resources_follow_the_conventions(by_key: dict[str, dict]) -> None:
    systems = {
        "appointment-kind": {"instant-virtual", "virtual", "clinic"},
        "communication-category": {"message", "chat", "notification"},
        "document-type": {"knowledge-article"},
        "knowledge-topic": {
            "heart",
            "diabetes",
            "mental-health",
            "skin",
            "children",
            "medicines",
            "infections",
            "lifestyle",
            "using-the-portal",
        },
        "task-code": {"chat-escalation", "self-care"},
    }
    for cid, codes in systems.items():
        cs = by_key[f"CodeSystem/{cid}"]
        assert cs["url"] == f"{BASE}/CodeSystem/{cid}"
        assert cs["content"] == "complete"
        assert {c["code"] for c in cs["concept"]} == codes
        for concept in cs["concept"]:
            assert concept["display"]
            assert [d["language"] for d in concept["designation"]] == ["da"]
        vs = by_key[f"ValueSet/{cid}"]
        assert vs["url"] == f"{BASE}/ValueSet/{cid}" == cs["valueSet"]
        (include,) = vs["compose"]["include"]
        assert include["system"] == cs["url"]
        assert {c["code"] for c in include["concept"]} == codes
    for sid, rtype in (
        ("portal-appointment", "Appointment"),
        ("portal-communication", "Communication"),
    ):
        sd = by_key[f"StructureDefinition/{sid}"]
        assert sd["url"] == f"{BASE}/StructureDefinition/{sid}"
        assert (sd["type"], sd["derivation"], sd["kind"]) == (rtype, "constraint", "resource")
        assert sd["baseDefinition"] == f"http://hl7.org/fhir/StructureDefinition/{rtype}"
        assert "snapshot" not in sd
        bound = {
            e["path"]: e["binding"]["valueSet"]
            for e in sd["differential"]["element"]
            if "binding" in e
        }
        assert set(bound.values()) <= {
            vs["url"] for k, vs in by_key.items() if k.startswith("ValueSet/")
        }


def test_directory_meets_the_counts() -> None:
    resources = _load(DIRECTORY_FILE)
    by_type: dict[str, list[dict]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)

    (org,) = by_type["Organization"]
    assert org["id"] == "org-contoso" and org["name"] == "Contoso Healthcare"

    locations = by_type["Location"]
    postal_codes = {loc["address"]["postalCode"] for loc in locations}
    assert len(locations) >= 3 and len(postal_codes) == len(locations)
    with_position = [loc for loc in locations if "position" in loc]
    assert 2 <= len(with_position) == len(locations) - 1, "exactly one Location lacks position"
    assert all(
        loc["managingOrganization"]["reference"] == "Organization/org-contoso" for loc in locations
    )

    assert len(by_type["Practitioner"]) >= 10
    roles = by_type["PractitionerRole"]
    specialties = {c["code"] for role in roles for s in role["specialty"] for c in s["coding"]}
    assert specialties == SPECIALTIES

    schedules = by_type["Schedule"]
    schedule_of = {}
    for sched in schedules:
        role_refs = [
            a["reference"] for a in sched["actor"] if a["reference"].startswith("PractitionerRole/")
        ]
        assert len(role_refs) == 1, sched["id"]
        schedule_of[role_refs[0]] = sched
    virtual_roles = 0
    virtual_specialties: set[str] = set()
    for role in roles:
        sched = schedule_of[f"PractitionerRole/{role['id']}"]  # one Schedule per role
        assert sched["active"] is True
        actors = {a["reference"] for a in sched["actor"]}
        assert role["practitioner"]["reference"] in actors
        kinds = set().union(*(_codes(st, APPOINTMENT_KIND) for st in sched["serviceType"]))
        assert kinds and kinds <= {"clinic", "virtual"}
        if "clinic" in kinds:
            assert role.get("location"), f"{role['id']} offers clinic visits without a location"
            assert {loc["reference"] for loc in role["location"]} <= actors
        assert _codes(sched["specialty"][0], "http://snomed.info/sct") == _codes(
            role["specialty"][0], "http://snomed.info/sct"
        )
        if "virtual" in kinds:
            virtual_roles += 1
            virtual_specialties |= _codes(role["specialty"][0], "http://snomed.info/sct")
        assert [t["daysOfWeek"] for t in role["availableTime"]] == [
            ["mon", "tue", "wed", "thu", "fri"]
        ]
    assert len(schedules) == len(roles)
    assert virtual_roles >= 5
    assert virtual_specialties == SPECIALTIES


def _bounds(detail: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The scheduled start and (inclusive) end of an activity as aware datetimes."""

    def moment(value: str, end: bool) -> datetime:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), TZ)
        return datetime.fromisoformat(value)

    period = detail.get("scheduledPeriod") or (
        detail.get("scheduledTiming", {}).get("repeat", {}).get("boundsPeriod")
    )
    if not period:
        return None
    return moment(period["start"], False), moment(period["end"], True)


def _activity_state(detail: dict[str, Any], today: date) -> str:
    """today / overdue / completed / upcoming, as the portal should compute it."""
    if detail["status"] == "completed":
        return "completed"
    bounds = _bounds(detail)
    assert bounds is not None
    start, end = bounds
    day_start = datetime.combine(today, time(), TZ)
    day_end = day_start + timedelta(days=1)
    if end <= day_start:
        return "overdue"
    if start >= day_end:
        return "upcoming"
    return "today"


@pytest.mark.parametrize(
    "today",
    [datetime.now(TZ).date(), date(2026, 3, 29), date(2026, 10, 25)],
    ids=["today", "dst-spring", "dst-autumn"],
)
@pytest.mark.parametrize("path", PATIENT_FILES, ids=lambda p: p.stem)
def test_each_patient_has_a_full_record(path: Path, today: date) -> None:
    resources = _load(path, today)
    (patient,) = [r for r in resources if r["resourceType"] == "Patient"]
    pid = f"Patient/{patient['id']}"
    assert patient["id"] == f"pat-{path.stem}"
    assert {r["resourceType"] for r in resources} >= RECORD_TYPES
    for r in resources:
        assert r["resourceType"] == "Patient" or path.stem in r["id"], r["id"]

    statements = [r for r in resources if r["resourceType"] == "MedicationStatement"]
    assert all(
        _codes(r["medicationCodeableConcept"], "http://www.whocc.no/atc") for r in statements
    )
    requests = [r for r in resources if r["resourceType"] == "MedicationRequest"]
    assert any(
        "medicationReference" in r and r["medicationReference"]["reference"].startswith("#")
        for r in requests
    )
    assert any("medicationCodeableConcept" in r for r in requests)
    assert {r["status"] for r in requests} >= {"active", "completed"}

    allergies = [r for r in resources if r["resourceType"] == "AllergyIntolerance"]
    assert all(r["criticality"] and r["reaction"][0]["severity"] for r in allergies)
    assert any(set(r["code"]) == {"text"} for r in allergies)

    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    statuses = {c["code"] for r in conditions for c in r["clinicalStatus"]["coding"]}
    assert statuses >= {"active", "resolved"}

    encounters = {r["id"]: r for r in resources if r["resourceType"] == "Encounter"}
    assert 3 <= len(encounters) <= 4
    now = datetime.now(TZ) if today == datetime.now(TZ).date() else datetime.combine(today, time(12), TZ)
    notes = [r for r in resources if r["resourceType"] == "DocumentReference"]
    noted = set()
    for note in notes:
        assert _codes(note["type"], "http://loinc.org") == {"11506-3"}
        (enc,) = note["context"]["encounter"]
        noted.add(enc["reference"].split("/", 1)[1])
        attachment = note["content"][0]["attachment"]
        assert attachment["contentType"].startswith("text/plain") and attachment["data"]
    assert noted == set(encounters), "every visit has its note"
    for enc in encounters.values():
        assert datetime.fromisoformat(enc["period"]["end"]) < now

    (plan,) = [r for r in resources if r["resourceType"] == "CarePlan"]
    assert plan["status"] == "active" and plan["careTeam"]
    states = Counter(_activity_state(a["detail"], today) for a in plan["activity"] if "detail" in a)
    assert set(states) == {"today", "overdue", "completed", "upcoming"}, states
    tasks = {f"Task/{r['id']}": r for r in resources if r["resourceType"] == "Task"}
    linked = [a["reference"]["reference"] for a in plan["activity"] if "reference" in a]
    assert linked and set(linked) <= set(tasks)
    for task in tasks.values():
        assert task["for"]["reference"] == pid
        assert _codes(task["code"], TASK_CODE) == {"self-care"}
        assert (task["status"], task["intent"]) == ("requested", "plan")
        assert date.fromisoformat(task["restriction"]["period"]["end"]) > today

    messages = [r for r in resources if r["resourceType"] == "Communication"]
    from_providers = [m for m in messages if m["sender"]["reference"].startswith("Practitioner/")]
    assert 2 <= len(from_providers) <= 4
    assert any("received" in m for m in from_providers)
    assert any("received" not in m for m in from_providers)
    by_id = {f"Communication/{m['id']}": m for m in messages}
    team_members = {
        p["member"]["reference"]
        for r in resources
        if r["resourceType"] == "CareTeam"
        for p in r["participant"]
    }
    identifiers = set()
    for m in messages:
        assert m["status"] == "completed"
        assert _codes(m["category"][0], COMMUNICATION_CATEGORY) == {"message"}
        assert m["subject"]["reference"] == pid
        assert m["topic"]["text"] and m["payload"][0]["contentString"]
        (ident,) = m["identifier"]
        assert ident["system"] == MESSAGE_ID
        identifiers.add(ident["value"])
        parties = {m["sender"]["reference"], *(r["reference"] for r in m["recipient"])}
        assert pid in parties
        assert (parties - {pid}) <= team_members
        assert datetime.fromisoformat(m["sent"]) < now
        if "partOf" in m:
            thread = by_id[m["partOf"][0]["reference"]]
            answered = by_id[m["inResponseTo"][0]["reference"]]
            assert "partOf" not in thread
            assert datetime.fromisoformat(answered["sent"]) < datetime.fromisoformat(m["sent"])
    assert len(identifiers) == len(messages)


def test_anna_has_a_thread_with_her_own_reply() -> None:
    resources = _load(ROOT / "fixtures" / "patients" / "anna.json")
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    assert patient["name"][0]["family"] == "Jensen"
    assert patient["birthDate"].startswith("1984")
    assert {(t["system"], t["value"]) for t in patient["telecom"]} >= {
        ("email", "anna@example.org"),
        ("phone", "+45 20 12 34 56"),
    }
    replies = [
        r
        for r in resources
        if r["resourceType"] == "Communication" and r["sender"]["reference"] == "Patient/pat-anna"
    ]
    assert replies and all(r["partOf"] and r["inResponseTo"] for r in replies)
    assert all(r["recipient"][0]["reference"].startswith("Practitioner/") for r in replies)
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    assert any(
        all("display" not in c for c in r["code"]["coding"]) and "text" not in r["code"]
        for r in conditions
    ), "one condition is coded without display or text, to exercise the portal's fallback"
