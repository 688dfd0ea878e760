"""Medical records pages against the real HAPI server, with records written the way an EHR
would write them (unscoped gateway), including sparse ones: only required elements, codes
without display, references to resources that are not on the server (display-only or
contained), extensions. Each test makes its own Patient."""

from __future__ import annotations

import base64
import html
import json
import re
import uuid

import pytest

from fhir_portal.fhir import FhirGateway
from tests.integration.conftest import make_patient_account
from tests.support import sign_in

EXT = [{"url": "http://ehr.example.org/fhir/StructureDefinition/source-system", "valueString": "OtherEHR"}]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def new_patient(gateway: FhirGateway, given: str = "Test") -> str:
    patient_id = uid("pat-rec")
    await gateway.update(
        {"resourceType": "Patient", "id": patient_id, "name": [{"family": "Records", "given": [given]}]}
    )
    return patient_id


async def put(gateway: FhirGateway, resource: dict) -> dict:
    """Write with a client id (PUT), as an EHR that owns its ids would."""
    resource.setdefault("id", uid(resource["resourceType"].lower()))
    return await gateway.update(resource)


def text_of(page: str) -> str:
    """The visible text of <main>, whitespace collapsed."""
    main = page[page.find("<main") : page.find("</main>")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


async def signed_in_client(client, accounts, patient_id: str):  # type: ignore[no-untyped-def]
    email = await make_patient_account(accounts, patient_id)
    response = await sign_in(client, email)
    assert response.status in (302, 303)
    return client


async def get_text(client, path: str) -> str:  # type: ignore[no-untyped-def]
    response = await client.get(path)
    body = await response.text()
    assert response.status == 200, body[:2000]
    return text_of(body)


def section(text: str, heading: str, next_heading: str | None = None) -> str:
    start = text.index(heading)
    end = text.index(next_heading, start) if next_heading and next_heading in text[start:] else len(text)
    return text[start:end]


async def test_medications_from_statements_and_requests_in_every_shape(gateway, client, accounts):
    pid = await new_patient(gateway)
    ref = {"reference": f"Patient/{pid}"}
    medication = await put(
        gateway,
        {
            "resourceType": "Medication",
            "code": {
                "coding": [{"system": "http://www.whocc.no/atc", "code": "C07AB02", "display": "metoprolol"}],
                "text": "Metoprolol 50 mg depot tablets",
            },
            "form": {"text": "Prolonged-release tablet"},
        },
    )
    # sparse: only the required elements, a code without display
    await put(
        gateway,
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "subject": ref,
            "medicationCodeableConcept": {
                "coding": [{"system": "http://www.whocc.no/atc", "code": "A10BA02"}]
            },
        },
    )
    # a request with a contained Medication and an extension
    await put(
        gateway,
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": ref,
            "extension": EXT,
            "contained": [
                {"resourceType": "Medication", "id": "m1", "code": {"text": "Atorvastatin 20 mg tablets"}}
            ],
            "medicationReference": {"reference": "#m1"},
            "authoredOn": "2026-01-10",
            "requester": {"display": "Dr. Outside Clinic"},
            "dosageInstruction": [{"text": "1 tablet in the evening"}],
        },
    )
    # a request referencing a Medication on the server (directory data)
    await put(
        gateway,
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": ref,
            "medicationReference": {"reference": f"Medication/{medication['id']}"},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg"}}]}],
        },
    )
    # past, and one entered in error that must not show
    await put(
        gateway,
        {
            "resourceType": "MedicationStatement",
            "status": "completed",
            "subject": ref,
            "medicationCodeableConcept": {"text": "Amoxicillin 500 mg capsules"},
            "effectivePeriod": {"start": "2025-03-01", "end": "2025-03-08"},
        },
    )
    await put(
        gateway,
        {
            "resourceType": "MedicationStatement",
            "status": "entered-in-error",
            "subject": ref,
            "medicationCodeableConcept": {"text": "Wrongly recorded medicine"},
        },
    )

    await signed_in_client(client, accounts, pid)
    text = await get_text(client, "/records/medications")
    current = section(text, "Current medicines", "Earlier medicines")
    earlier = section(text, "Earlier medicines")
    assert "A10BA02" in current  # a code without display shows the code
    assert "Atorvastatin 20 mg tablets" in current and "Dr. Outside Clinic" in current
    assert "1 tablet in the evening" in current
    assert "Metoprolol 50 mg depot tablets" in current and "Prolonged-release tablet" in current
    assert "50 mg" in current
    assert "Amoxicillin 500 mg capsules" in earlier and "Amoxicillin" not in current
    assert "Wrongly recorded medicine" not in text
    overview = await get_text(client, "/records")
    assert "4 medicine records" in overview  # the one entered in error is not counted


async def test_allergies_with_criticality_reactions_and_sparse_records(gateway, client, accounts):
    pid = await new_patient(gateway)
    ref = {"reference": f"Patient/{pid}"}
    await put(gateway, {"resourceType": "AllergyIntolerance", "patient": ref})  # only the required element
    await put(
        gateway,
        {
            "resourceType": "AllergyIntolerance",
            "patient": ref,
            "extension": EXT,
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "criticality": "high",
            "type": "allergy",
            "category": ["food"],
            "code": {
                "coding": [{"system": "http://snomed.info/sct", "code": "91935009", "display": "Peanut"}]
            },
            "reaction": [
                {
                    "manifestation": [{"text": "Swollen throat"}],
                    "severity": "severe",
                    "description": "Needed adrenaline",
                }
            ],
            "onsetDateTime": "2001",
        },
    )
    await put(
        gateway,
        {
            "resourceType": "AllergyIntolerance",
            "patient": ref,
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "resolved",
                    }
                ]
            },
            "code": {"text": "Cow's milk protein"},
        },
    )
    await signed_in_client(client, accounts, pid)
    text = await get_text(client, "/records/allergies")
    current = section(text, "Current allergies", "Earlier allergies")
    assert "Peanut" in current and "High risk" in current
    assert "Swollen throat (Severe)" in current and "Needed adrenaline" in current
    assert "Unnamed allergy" in current  # the sparse one still renders
    assert "Cow's milk protein" in section(text, "Earlier allergies")
    assert "3 allergies or intolerances" in await get_text(client, "/records")


async def test_conditions_current_and_past_with_codes_without_display(gateway, client, accounts):
    pid = await new_patient(gateway)
    ref = {"reference": f"Patient/{pid}"}
    clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    await put(
        gateway,
        {
            "resourceType": "Condition",
            "subject": ref,
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
            "clinicalStatus": {"coding": [{"system": clinical, "code": "active"}]},
            "onsetDateTime": "2019-06-02",
        },
    )
    await put(
        gateway,
        {
            "resourceType": "Condition",
            "subject": ref,
            "extension": EXT,
            "code": {"text": "Fractured wrist"},
            "clinicalStatus": {"coding": [{"system": clinical, "code": "resolved"}]},
            "onsetDateTime": "2024-02-10",
            "abatementDateTime": "2024-04-01",
        },
    )
    await put(gateway, {"resourceType": "Condition", "subject": ref})  # code is optional in R4
    await signed_in_client(client, accounts, pid)
    text = await get_text(client, "/records/conditions")
    current = section(text, "Current conditions", "Earlier conditions")
    assert "44054006" in current and "Jun 2, 2019" in current
    assert "Unnamed condition" in current
    earlier = section(text, "Earlier conditions")
    assert "Fractured wrist" in earlier and "Resolved" in earlier
    assert "3 conditions" in await get_text(client, "/records")


async def test_visits_with_notes_decoded_linked_and_from_a_composition(gateway, client, accounts):
    pid = await new_patient(gateway)
    ref = {"reference": f"Patient/{pid}"}
    full = await put(
        gateway,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "subject": ref,
            "extension": EXT,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "185349003",
                            "display": "Encounter for check up",
                        }
                    ]
                }
            ],
            "period": {"start": "2026-05-04T09:00:00+02:00", "end": "2026-05-04T09:20:00+02:00"},
            "participant": [{"individual": {"reference": "Practitioner/prac-mette-hansen"}}],
            "location": [{"location": {"display": "Outside Clinic Aarhus"}}],
            "reasonCode": [{"text": "Blood pressure check"}],
        },
    )
    sparse = await put(
        gateway,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "subject": ref,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
        },
    )
    linked = await put(
        gateway,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "subject": ref,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"text": "Physiotherapy"}],
            "period": {"start": "2026-03-01T10:00:00+01:00"},
        },
    )
    note = "S: Feels well.\nP: Continue the same dose."
    await put(
        gateway,
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": ref,
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]},
            "date": "2026-05-04T09:25:00+02:00",
            "author": [{"display": "Dr. Outside"}],
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "title": "Check-up note",
                        "data": base64.b64encode(note.encode()).decode(),
                    }
                }
            ],
            "context": {"encounter": [{"reference": f"Encounter/{full['id']}"}]},
        },
    )
    await put(
        gateway,
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": ref,
            "content": [
                {
                    "attachment": {
                        "contentType": "application/pdf",
                        "url": "https://ehr.example.org/notes/123.pdf",
                        "title": "Physio report",
                    }
                }
            ],
            "context": {"encounter": [{"reference": f"Encounter/{linked['id']}"}]},
        },
    )
    await put(
        gateway,
        {
            "resourceType": "Composition",
            "status": "final",
            "subject": ref,
            "date": "2026-03-01T12:00:00+01:00",
            "type": {"coding": [{"system": "http://loinc.org", "code": "34133-9"}]},
            "title": "Physio summary",
            "author": [{"display": "Physio Team"}],
            "encounter": {"reference": f"Encounter/{linked['id']}"},
            "section": [
                {
                    "title": "Plan",
                    "text": {
                        "status": "generated",
                        "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Exercises '
                        "twice a day &amp; walk daily.</p></div>",
                    },
                }
            ],
        },
    )
    await signed_in_client(client, accounts, pid)
    text = await get_text(client, "/records/visits")
    assert "Encounter for check up" in text and "Mette Hansen" in text  # name read from the directory
    assert "Outside Clinic Aarhus" in text and "Blood pressure check" in text
    assert text.index("Encounter for check up") < text.index("Physiotherapy")  # newest first
    assert "VR" in text or "virtual" in text.lower()  # the sparse one still renders
    visit = await get_text(client, f"/records/visits/{full['id']}")
    assert "S: Feels well. P: Continue the same dose." in visit and "Dr. Outside" in visit
    raw = await (await client.get(f"/records/visits/{linked['id']}")).text()
    assert 'href="https://ehr.example.org/notes/123.pdf"' in raw
    assert "Exercises twice a day & walk daily." in text_of(raw) and "Physio summary" in text_of(raw)
    sparse_page = await get_text(client, f"/records/visits/{sparse['id']}")
    assert "There is no note for this visit yet" in sparse_page
    assert "3 visits" in await get_text(client, "/records")


async def test_a_visit_of_another_patient_is_not_found(gateway, client, accounts):
    mine, theirs = await new_patient(gateway), await new_patient(gateway)
    other = await put(
        gateway,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "subject": {"reference": f"Patient/{theirs}"},
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        },
    )
    await signed_in_client(client, accounts, mine)
    response = await client.get(f"/records/visits/{other['id']}")
    assert response.status == 404


async def test_care_plans_with_goals_and_activities_and_a_minimal_plan(gateway, client, accounts):
    pid = await new_patient(gateway)
    ref = {"reference": f"Patient/{pid}"}
    goal = await put(
        gateway,
        {
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "subject": ref,
            "description": {"text": "HbA1c below 53 mmol/mol"},
            "target": [{"dueDate": "2026-12-31"}],
        },
    )
    await put(
        gateway,
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": ref,
            "extension": EXT,
            "title": "Diabetes plan",
            "period": {"start": "2026-01-01"},
            "contained": [
                {
                    "resourceType": "Goal",
                    "id": "g1",
                    "lifecycleStatus": "active",
                    "description": {"text": "Walk 30 minutes a day"},
                    "subject": ref,
                }
            ],
            "goal": [{"reference": f"Goal/{goal['id']}"}, {"reference": "#g1"}, {"display": "Stop smoking"}],
            "activity": [
                {"detail": {"status": "in-progress", "code": {"text": "Measure blood sugar"}}},
                {"reference": {"display": "Diet course (at the municipality)"}},
            ],
        },
    )
    await put(
        gateway,
        {
            "resourceType": "CarePlan",
            "status": "completed",
            "intent": "plan",
            "subject": ref,
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "736353004"}]}],
        },
    )
    await signed_in_client(client, accounts, pid)
    text = await get_text(client, "/records/care-plans")
    current = section(text, "Current care plans", "Earlier care plans")
    assert "Diabetes plan" in current
    for expected in (
        "HbA1c below 53 mmol/mol",
        "Walk 30 minutes a day",
        "Stop smoking",
        "Measure blood sugar",
        "Diet course (at the municipality)",
    ):
        assert expected in current
    assert "736353004" in section(text, "Earlier care plans")  # titled by its code
    assert "2 care plans" in await get_text(client, "/records")


async def test_care_teams_show_members_roles_and_how_to_reach_them(gateway, client, accounts):
    pid = await new_patient(gateway)
    ref = {"reference": f"Patient/{pid}"}
    await put(
        gateway,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": ref,
            "name": "Heart team",
            "participant": [
                {
                    "member": {"reference": "Practitioner/prac-mette-hansen"},
                    "role": [{"coding": [{"system": "http://snomed.info/sct", "code": "59058001"}]}],
                },
                {"member": {"reference": "#p1"}, "role": [{"text": "Cardiology nurse"}]},
                {
                    "member": {"display": "Dr. Elsewhere"},
                    "onBehalfOf": {"reference": "Organization/org-contoso"},
                },
            ],
            "contained": [
                {
                    "resourceType": "Practitioner",
                    "id": "p1",
                    "name": [{"text": "Nina Nurse"}],
                    "telecom": [{"system": "phone", "value": "+45 11 22 33 44"}],
                }
            ],
        },
    )
    await put(gateway, {"resourceType": "CareTeam", "status": "inactive", "subject": ref, "name": "Old team"})
    await signed_in_client(client, accounts, pid)
    text = await get_text(client, "/records/care-teams")
    current = section(text, "Your care teams", "Earlier care teams")
    assert "Heart team" in current and "Mette Hansen" in current and "59058001" in current
    assert "mette.hansen@contoso.example.org" in current  # telecom from the directory Practitioner
    assert "Nina Nurse" in current and "+45 11 22 33 44" in current  # contained
    assert "Dr. Elsewhere" in current and "Contoso Healthcare" in current
    assert "Old team" in section(text, "Earlier care teams")


async def test_lists_are_paged(gateway, client, accounts):
    pid = await new_patient(gateway)
    ref = {"reference": f"Patient/{pid}"}
    entries = [
        {
            "resource": {
                "resourceType": "Condition",
                "subject": ref,
                "code": {"text": f"Condition number {i:02d}"},
                "onsetDateTime": f"2020-01-{i + 1:02d}",
            },
            "request": {"method": "POST", "url": "Condition"},
        }
        for i in range(25)
    ]
    await gateway.transaction(entries)
    await signed_in_client(client, accounts, pid)
    first = await get_text(client, "/records/conditions")
    assert "Page 1 of 2" in first and "Next page" in first
    assert "Condition number 24" in first and "Condition number 00" not in first  # newest onset first
    second = await get_text(client, "/records/conditions?page=2")
    assert "Page 2 of 2" in second and "Previous page" in second
    assert sum(f"Condition number {i:02d}" in second for i in range(25)) == 5
    assert "25 conditions" in await get_text(client, "/records")


async def test_download_my_record_is_a_fhir_bundle_attachment(gateway, client, accounts):
    pid = await new_patient(gateway)
    condition = await put(
        gateway,
        {
            "resourceType": "Condition",
            "subject": {"reference": f"Patient/{pid}"},
            "code": {"text": "Hay fever"},
        },
    )
    await signed_in_client(client, accounts, pid)
    response = await client.get("/records/download")
    assert response.status == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert ".json" in response.headers["Content-Disposition"]
    bundle = json.loads(await response.read())
    assert bundle["resourceType"] == "Bundle"
    ids = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    assert ("Patient", pid) in ids and ("Condition", condition["id"]) in ids


@pytest.mark.parametrize(
    "path",
    [
        "/records",
        "/records/medications",
        "/records/allergies",
        "/records/conditions",
        "/records/visits",
        "/records/care-plans",
        "/records/care-teams",
    ],
)
async def test_empty_record_pages_say_what_to_do(gateway, client, accounts, path):
    pid = await new_patient(gateway)
    await signed_in_client(client, accounts, pid)
    text = await get_text(client, path)
    if path == "/records":
        assert "0 medicine records" in text and "Download my record" in text
    else:
        assert re.search(r"No \w+|You have no", text), text[:500]
