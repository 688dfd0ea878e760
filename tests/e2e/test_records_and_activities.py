"""A patient opens home, every records page and activities, and marks an activity done;
axe-core runs on each page. The patient's record is written as an EHR would write it."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from tests.e2e.conftest import LivePortal, check_accessibility, sign_in

PASSWORD = "a long e2e password"
expect.set_options(timeout=15_000)  # the shared 2-core machine can be slow under load


def put(base_url: str, resource: dict) -> dict:
    resource.setdefault("id", f"{resource['resourceType'].lower()}-{uuid.uuid4().hex[:12]}")
    request = urllib.request.Request(
        f"{base_url}/{resource['resourceType']}/{resource['id']}",
        data=json.dumps(resource).encode(),
        method="PUT",
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local test server
        return json.loads(response.read())


PORTAL_TZ = ZoneInfo("Europe/Copenhagen")


def _local(day: date, hour: int, minute: int = 0) -> str:
    """A dateTime at a local time in the portal's time zone, with the right offset."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PORTAL_TZ).isoformat()


def ehr_record(base_url: str) -> str:
    pid = f"pat-e2e-{uuid.uuid4().hex[:10]}"
    put(base_url, {"resourceType": "Patient", "id": pid, "name": [{"family": "Berg", "given": ["Ida"]}]})
    ref = {"reference": f"Patient/{pid}", "display": "Ida Berg"}
    today = datetime.now(PORTAL_TZ).date()  # the portal's day, not the machine's
    put(
        base_url,
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "subject": ref,
            "medicationCodeableConcept": {"text": "Metformin 500 mg tablets"},
            "dosage": [{"text": "1 tablet twice daily"}],
        },
    )
    put(
        base_url,
        {
            "resourceType": "AllergyIntolerance",
            "patient": ref,
            "criticality": "high",
            "code": {"text": "Penicillin"},
        },
    )
    put(base_url, {"resourceType": "Condition", "subject": ref, "code": {"text": "Type 2 diabetes"}})
    encounter = put(
        base_url,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "subject": ref,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"text": "Diabetes check"}],
            "period": {"start": _local(today - timedelta(days=3), 9)},
            "participant": [
                {"individual": {"reference": "Practitioner/prac-mette-hansen", "display": "Mette Hansen"}}
            ],
        },
    )
    put(
        base_url,
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": ref,
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "title": "Diabetes check note",
                        "data": "SGJBMWMgNTAuIENvbnRpbnVlIG1ldGZvcm1pbi4=",
                    }
                }
            ],
            "context": {"encounter": [{"reference": f"Encounter/{encounter['id']}"}]},
        },
    )
    put(
        base_url,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": ref,
            "name": "Diabetes team",
            "participant": [
                {
                    "member": {"reference": "Practitioner/prac-mette-hansen"},
                    "role": [{"text": "General practitioner"}],
                }
            ],
        },
    )
    put(
        base_url,
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": ref,
            "title": "Diabetes plan",
            "activity": [
                {
                    "detail": {
                        "status": "not-started",
                        "code": {"text": "Measure blood sugar"},
                        "performer": [ref],
                        "scheduledPeriod": {"start": today.isoformat(), "end": today.isoformat()},
                    }
                },
                {
                    "detail": {
                        "status": "not-started",
                        "code": {"text": "Foot care check"},
                        "performer": [ref],
                        "scheduledPeriod": {"end": (today - timedelta(days=2)).isoformat()},
                    }
                },
            ],
        },
    )
    return pid


def test_home_records_and_activities(page: Page, portal: LivePortal) -> None:
    from fhir_portal import keys

    pid = ehr_record(portal.settings.fhir_base_url)
    email = f"{pid}@example.org"
    store = portal.app[keys.ACCOUNTS]

    async def account() -> None:
        await store.create_account(
            email,
            password_hash=await hash_password(PASSWORD),
            roles={Role.PATIENT},
            display_name="Ida Berg",
            patient_id=pid,
            locale="en",
            email_verified=True,
            profile_complete=True,
        )

    portal.run(account())
    sign_in(page, portal.url, email, PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome, Ida")
    today = page.get_by_role("region", name="Today's activities")
    expect(today).to_contain_text("Measure blood sugar")
    expect(today).to_contain_text("You have 1 overdue activity")
    check_accessibility(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Medical records").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Medical records")
    expect(page.get_by_role("main")).to_contain_text("1 medicine record")
    check_accessibility(page)

    for link, expected in [
        ("Medicines", "Metformin 500 mg tablets"),
        ("Allergies", "Penicillin"),
        ("Conditions", "Type 2 diabetes"),
        ("Visit summaries", "Diabetes check"),
        ("Care plans", "Measure blood sugar"),
        ("Care teams", "mette.hansen@contoso"),
    ]:
        page.goto(f"{portal.url}/records")
        page.get_by_role("main").get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(link)
        expect(page.get_by_role("main")).to_contain_text(expected)
        check_accessibility(page)

    page.goto(f"{portal.url}/records/visits")
    page.get_by_role("link", name="Diabetes check").click()
    expect(page.get_by_role("main")).to_contain_text("HbA1c 50. Continue metformin.")
    check_accessibility(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Activities").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Activities")
    expect(page.locator("#overdue")).to_contain_text("Foot care check")
    check_accessibility(page)
    page.locator("#current").get_by_role("button", name="Mark as done: Measure blood sugar").click()
    expect(page.get_by_role("status")).to_contain_text("marked as done")
    expect(page.locator("#completed")).to_contain_text("Measure blood sugar")
    expect(page.locator("#current")).not_to_contain_text("Measure blood sugar")
    check_accessibility(page)

    page.goto(f"{portal.url}/")
    expect(page.get_by_role("region", name="Today's activities")).to_contain_text(
        "Nothing is planned for today."
    )
    check_accessibility(page)
