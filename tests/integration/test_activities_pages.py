"""Activities and the home page against the real HAPI server: care plans and Tasks written
as an EHR would, overdue computed, and marking an activity done written back with a
versioned update (conflicts, idempotence, only the patient's own activities)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fhir_portal.fhir import FhirGateway
from tests.integration.test_records_pages import (
    EXT,
    get_text,
    new_patient,
    put,
    section,
    signed_in_client,
    text_of,
)
from tests.support import csrf_of

TZ = ZoneInfo("Europe/Copenhagen")
TASK_CODE = "http://fhir-portal.example.org/fhir/CodeSystem/task-code"


def day(offset: int) -> str:
    return (datetime.now(TZ).date() + timedelta(days=offset)).isoformat()


def moment(hours: float) -> str:
    return (datetime.now(TZ) + timedelta(hours=hours)).isoformat(timespec="seconds")


async def plan_with_activities(gateway: FhirGateway, pid: str) -> tuple[dict, dict]:
    ref = {"reference": f"Patient/{pid}", "display": "The patient"}
    task = await put(
        gateway,
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "plan",
            "for": ref,
            "owner": ref,
            "code": {"coding": [{"system": TASK_CODE, "code": "self-care"}]},
            "description": "Fill in the symptom diary",
            "restriction": {"period": {"end": day(-2)}},
        },
    )
    plan = await put(
        gateway,
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": ref,
            "extension": EXT,
            "title": "Recovery plan",
            "activity": [
                {
                    "detail": {
                        "status": "not-started",
                        "code": {"text": "Overdue exercise"},
                        "performer": [ref],
                        "scheduledPeriod": {"start": day(-5), "end": day(-1)},
                    }
                },
                {
                    "detail": {
                        "status": "scheduled",
                        "code": {"text": "Due today"},
                        "performer": [ref],
                        "scheduledPeriod": {"start": day(0), "end": day(0)},
                    }
                },
                {
                    "detail": {
                        "status": "in-progress",
                        "code": {"text": "Daily walk"},
                        "performer": [ref],
                        "scheduledTiming": {
                            "repeat": {
                                "boundsPeriod": {"start": day(-3), "end": day(10)},
                                "frequency": 1,
                                "period": 1,
                                "periodUnit": "d",
                            }
                        },
                    }
                },
                {
                    "detail": {
                        "status": "completed",
                        "code": {"text": "First consultation"},
                        "scheduledPeriod": {"start": moment(-100), "end": moment(-99)},
                        "performer": [{"display": "Dr. Outside"}],
                    }
                },
                {
                    "detail": {
                        "status": "cancelled",
                        "code": {"text": "Cancelled test"},
                        "scheduledPeriod": {"end": day(-10)},
                    }
                },
                {
                    "detail": {
                        "status": "scheduled",
                        "code": {"text": "Clinic check"},
                        "performer": [{"display": "Nurse Nina"}],
                        "scheduledPeriod": {"start": moment(-3), "end": moment(-2)},
                    }
                },
                {"reference": {"reference": f"Task/{task['id']}"}},
                {"detail": {"status": "not-started"}},  # sparse: no code, no schedule
            ],
        },
    )
    return plan, task


def html_section(page: str, section_id: str) -> str:
    """The visible text of <section id="...">."""
    match = re.search(rf'<section id="{section_id}".*?</section>', page, re.S)
    assert match, f"no section {section_id}"
    return text_of("<main>" + match.group(0) + "</main>")


async def test_activities_are_grouped_current_overdue_completed(gateway, client, accounts):
    pid = await new_patient(gateway)
    await plan_with_activities(gateway, pid)
    await signed_in_client(client, accounts, pid)
    page = await (await client.get("/activities")).text()
    text = text_of(page)
    assert "Overdue (3)" in text and "Current (3)" in text and "Completed (1)" in text
    overdue = html_section(page, "overdue")
    assert (
        "Overdue exercise" in overdue and "Fill in the symptom diary" in overdue and "Clinic check" in overdue
    )
    current = html_section(page, "current")
    assert "Due today" in current and "Daily walk" in current and "Overdue exercise" not in current
    assert "Activity" in current  # the sparse activity (no code, no schedule) still renders
    assert "First consultation" in html_section(page, "completed")
    assert "Cancelled test" in html_section(page, "cancelled")


async def test_home_shows_todays_activities_and_the_overdue_count(gateway, client, accounts):
    pid = await new_patient(gateway, "Hanne")
    await plan_with_activities(gateway, pid)
    await signed_in_client(client, accounts, pid)
    text = await get_text(client, "/")
    today = section(text, "Today's activities", "Next appointments")
    assert "Welcome, Hanne" in text
    assert "You have 3 overdue activities" in today
    assert "Due today" in today and "Daily walk" in today
    assert "First consultation" not in today and "Cancelled test" not in today
    for area in ("/appointments", "/messages", "/records", "/activities", "/knowledge"):
        assert f'href="{area}"' in await (await client.get("/")).text()


async def test_home_empty_states_say_what_to_do(gateway, client, accounts):
    pid = await new_patient(gateway)
    await signed_in_client(client, accounts, pid)
    text = await get_text(client, "/")
    assert "Nothing is planned for today." in text
    assert "You have no upcoming appointments. Book an appointment" in text
    assert "No messages yet. Write to your care team" in text


async def test_home_shows_unread_messages_and_next_appointment_from_the_ehr(gateway, client, accounts):
    pid = await new_patient(gateway)
    ref = {"reference": f"Patient/{pid}"}
    await put(
        gateway,
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": ref,
            "recipient": [ref],
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://fhir-portal.example.org/fhir/CodeSystem/communication-category",
                            "code": "message",
                        }
                    ]
                }
            ],
            "sender": {"reference": "Practitioner/prac-mette-hansen", "display": "Mette Hansen"},
            "topic": {"text": "Your lab results are ready"},
            "sent": moment(-1),
            "payload": [{"contentString": "All normal."}],
        },
    )
    await put(
        gateway,
        {
            "resourceType": "Appointment",
            "status": "booked",
            "start": moment(48),
            "end": moment(48.5),
            "appointmentType": {
                "coding": [
                    {
                        "system": "http://fhir-portal.example.org/fhir/CodeSystem/appointment-kind",
                        "code": "clinic",
                    }
                ]
            },
            "participant": [
                {"actor": ref, "status": "accepted"},
                {
                    "actor": {"reference": "Practitioner/prac-mette-hansen", "display": "Mette Hansen"},
                    "status": "accepted",
                },
            ],
        },
    )
    await signed_in_client(client, accounts, pid)
    text = await get_text(client, "/")
    messages = section(text, "Messages", "Go to")
    assert "1 unread message" in messages and "Your lab results are ready" in messages
    appointments = section(text, "Next appointments", "Messages")
    assert "Clinic appointment" in appointments and "Mette Hansen" in appointments


async def _form_for(client, path: str, title: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    page = await (await client.get(path)).text()
    token = csrf_of(page)
    for form in re.findall(r'<form method="post" action="/activities/done".*?</form>', page, re.S):
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))
        if fields.get("title") == title:
            fields["csrf_token"] = token
            return fields
    raise AssertionError(f"no mark-done form for {title!r}")


async def test_marking_a_care_plan_activity_done_is_a_versioned_idempotent_write(gateway, client, accounts):
    pid = await new_patient(gateway)
    plan, _ = await plan_with_activities(gateway, pid)
    await signed_in_client(client, accounts, pid)
    form = await _form_for(client, "/activities", "Due today")
    assert form["version"] == plan["meta"]["versionId"]
    response = await client.post("/activities/done", data=form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/activities?done=1"
    stored = await gateway.read("CarePlan", plan["id"], fresh=True)
    assert stored["activity"][1]["detail"]["status"] == "completed"
    assert stored["meta"]["versionId"] != plan["meta"]["versionId"]
    assert stored["extension"] == EXT  # the rest of the EHR's resource is kept
    # the same form again (a double click, a retry): nothing new is written
    again = await client.post("/activities/done", data=form, allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/activities?done=already"
    assert (await gateway.read("CarePlan", plan["id"], fresh=True))["meta"]["versionId"] == stored["meta"][
        "versionId"
    ]
    page = await (await client.get("/activities?done=1")).text()
    assert "marked as done" in text_of(page)
    assert "Due today" in html_section(page, "completed")
    assert "Due today" not in html_section(page, "current")


async def test_a_conflicting_change_reloads_and_asks_again(gateway, client, accounts):
    pid = await new_patient(gateway)
    plan, _ = await plan_with_activities(gateway, pid)
    await signed_in_client(client, accounts, pid)
    form = await _form_for(client, "/activities", "Daily walk")
    # the EHR changes the plan after the page was rendered
    changed = dict(plan)
    changed["description"] = "Updated by the nurse"
    await gateway.update(changed, if_match=plan["meta"]["versionId"])
    response = await client.post("/activities/done", data=form)
    assert response.status == 409
    page = await response.text()
    assert "changed by your care team" in text_of(page)
    stored = await gateway.read("CarePlan", plan["id"], fresh=True)
    assert stored["activity"][2]["detail"]["status"] == "in-progress"  # nothing written
    # the reloaded page carries the new version: asking again works
    fresh = await _form_for(client, "/activities", "Daily walk")
    assert fresh["version"] == stored["meta"]["versionId"]
    ok = await client.post("/activities/done", data=fresh, allow_redirects=False)
    assert ok.status == 303
    stored = await gateway.read("CarePlan", plan["id"], fresh=True)
    assert stored["activity"][2]["detail"]["status"] == "completed"
    assert stored["description"] == "Updated by the nurse"


async def test_marking_a_referenced_task_done_from_home(gateway, client, accounts):
    pid = await new_patient(gateway)
    _, task = await plan_with_activities(gateway, pid)
    await signed_in_client(client, accounts, pid)
    form = await _form_for(client, "/activities", "Fill in the symptom diary")
    assert form["source"] == "task"
    form["next"] = "/"
    response = await client.post("/activities/done", data=form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/?done=1"
    stored = await gateway.read("Task", task["id"], fresh=True)
    assert stored["status"] == "completed"


async def test_activities_performed_by_the_care_team_cannot_be_marked_by_the_patient(
    gateway, client, accounts
):
    pid = await new_patient(gateway)
    plan, _ = await plan_with_activities(gateway, pid)
    await signed_in_client(client, accounts, pid)
    page = await (await client.get("/activities")).text()
    assert 'value="Clinic check"' not in page  # no button for it
    token = csrf_of(page)
    response = await client.post(
        "/activities/done",
        data={
            "csrf_token": token,
            "source": "careplan",
            "id": plan["id"],
            "index": "5",
            "version": plan["meta"]["versionId"],
            "title": "Clinic check",
            "next": "/activities",
        },
    )
    assert response.status == 403
    stored = await gateway.read("CarePlan", plan["id"], fresh=True)
    assert stored["activity"][5]["detail"]["status"] == "scheduled"


async def test_another_patients_care_plan_cannot_be_marked(gateway, client, accounts):
    mine, theirs = await new_patient(gateway), await new_patient(gateway)
    plan, _ = await plan_with_activities(gateway, theirs)
    await signed_in_client(client, accounts, mine)
    token = csrf_of(await (await client.get("/activities")).text())
    response = await client.post(
        "/activities/done",
        data={
            "csrf_token": token,
            "source": "careplan",
            "id": plan["id"],
            "index": "1",
            "version": plan["meta"]["versionId"],
            "title": "Due today",
            "next": "/activities",
        },
    )
    assert response.status == 404
    stored = await gateway.read("CarePlan", plan["id"], fresh=True)
    assert stored["activity"][1]["detail"]["status"] == "scheduled"
