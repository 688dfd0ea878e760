"""A patient writes to the care team, the clinician answers in the staff console, the
patient reads the answer; axe-core on every page."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from fhir_portal import keys
from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from fhir_portal.resources import messages
from tests.e2e.conftest import LivePortal, check_accessibility, sign_in

PASSWORD = "a long e2e password"
DOCTOR = "prac-mette-hansen"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


def _setup(portal: LivePortal) -> tuple[str, str, str]:
    """A fresh patient (care team: Mette Hansen) with an account, and a clinician account."""
    suffix = uuid.uuid4().hex[:8]
    gateway = portal.app[keys.GATEWAY]
    store = portal.app[keys.ACCOUNTS]
    patient_email = f"e2e-msg-{suffix}@example.org"
    clinician_email = f"e2e-mette-{suffix}@contoso.example"

    async def create() -> str:
        patient = await gateway.create(
            {
                "resourceType": "Patient",
                "name": [{"given": ["Ida"], "family": f"Berg{suffix[:4]}"}],
                "telecom": [{"system": "email", "value": patient_email}],
            }
        )
        await gateway.create(
            {
                "resourceType": "CareTeam",
                "status": "active",
                "subject": {"reference": f"Patient/{patient['id']}"},
                "participant": [
                    {"member": {"reference": f"Practitioner/{DOCTOR}", "display": "Mette Hansen"}}
                ],
            }
        )
        password = await hash_password(PASSWORD)
        await store.create_account(
            patient_email, password_hash=password, roles={Role.PATIENT},
            display_name="Ida Berg", patient_id=patient["id"], locale="en",
            email_verified=True, profile_complete=True,
        )
        await store.create_account(
            clinician_email, password_hash=password, roles={Role.CLINICIAN},
            display_name="Mette Hansen", practitioner_id=DOCTOR, locale="en",
            email_verified=True, profile_complete=True,
        )
        return str(patient["id"])

    return portal.run(create()), patient_email, clinician_email


def _sent_with_subject(portal: LivePortal, patient_id: str, subject: str) -> int:
    gateway = portal.app[keys.GATEWAY]

    async def count() -> int:
        page = await gateway.search(
            "Communication",
            {"sender": f"Patient/{patient_id}", "category": messages.CATEGORY},
            fresh=True,
        )
        return sum(1 for r in page.resources if r.get("topic", {}).get("text") == subject)

    return portal.run(count())


def test_patient_sends_clinician_replies_patient_reads(
    page: Page, browser: Browser, portal: LivePortal, tmp_path: Path
) -> None:
    patient_id, patient_email, clinician_email = _setup(portal)
    subject = f"<b>Rash</b> on my arm {uuid.uuid4().hex[:4]}"

    # the patient writes, with a photo; a double click still sends one message
    sign_in(page, portal.url, patient_email, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    expect(page.get_by_role("heading", level=1, name="Messages")).to_be_visible()
    check_accessibility(page)
    page.get_by_role("link", name="New message").click()
    expect(page.get_by_role("heading", level=1, name="New message")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("To").select_option(f"Practitioner/{DOCTOR}")
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Message", exact=True).fill("It itches since Monday.\n<script>alert(1)</script>")
    photo = tmp_path / "rash.png"
    photo.write_bytes(PNG)
    page.get_by_label("Attachment (optional)").set_input_files(str(photo))
    page.get_by_role("button", name="Send message").dblclick()
    expect(page.get_by_role("status")).to_contain_text("Your message has been sent.")
    expect(page.get_by_role("heading", level=1)).to_have_text(subject)  # shown as text
    expect(page.locator(".msg__body").first).to_contain_text("<script>alert(1)</script>")
    expect(page.get_by_role("link", name="Open attachment: rash.png")).to_be_visible()
    check_accessibility(page)
    assert _sent_with_subject(portal, patient_id, subject) == 1

    # the clinician answers from the staff console
    staff = browser.new_context(bypass_csp=True, locale="en-GB")
    clinician = staff.new_page()
    clinician.set_default_timeout(15_000)
    sign_in(clinician, portal.url, clinician_email, PASSWORD)
    clinician.goto(f"{portal.url}/staff/messages")
    expect(clinician.get_by_role("heading", level=1, name="Patient messages")).to_be_visible()
    check_accessibility(clinician)
    clinician.get_by_role("link", name=subject).click()
    expect(clinician.get_by_text("It itches since Monday.")).to_be_visible()
    check_accessibility(clinician)
    clinician.get_by_label("Your reply").fill("Please send a photo in daylight, and use the cream.")
    clinician.get_by_role("button", name="Send reply").click()
    expect(clinician.get_by_role("status")).to_contain_text("Your reply has been sent.")
    check_accessibility(clinician)
    staff.close()

    # the patient sees one unread message in the navigation and the inbox, and reads it
    page.goto(f"{portal.url}/")
    messages_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages")
    expect(messages_link).to_contain_text("Messages (1)")
    expect(messages_link).to_have_accessible_name("Messages 1 unread message")
    check_accessibility(page)
    messages_link.click()
    expect(page.get_by_text("You have 1 unread message.")).to_be_visible()
    check_accessibility(page)
    page.locator(".msg-item--unread a").first.click()
    expect(page.get_by_text("Please send a photo in daylight")).to_be_visible()
    expect(messages_link).to_have_accessible_name("Messages")
    check_accessibility(page)
    page.goto(f"{portal.url}/messages")
    expect(page.get_by_text("You have no unread messages.")).to_be_visible()
