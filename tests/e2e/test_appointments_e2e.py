"""Journeys 5 and 6 in a real browser: book by postal code, check in from the email link,
book and cancel a virtual appointment, and the instant queue taken by a clinician."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from fhir_portal import keys
from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from tests.e2e.conftest import LivePortal, check_accessibility, sign_in
from tests.integration.booking_support import TZ, private_slot
from tests.smtp import SmtpSink, links_in
from tests.support import TEST_PASSWORD

pytestmark = pytest.mark.e2e


def _patient(portal: LivePortal, given: str) -> tuple[str, str]:
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.org"

    async def make() -> str:
        gateway = portal.app[keys.GATEWAY]
        created = await gateway.create({
            "resourceType": "Patient", "name": [{"family": "Tester", "given": [given]}],
            "telecom": [{"system": "email", "value": email}],
        })
        await portal.app[keys.ACCOUNTS].create_account(
            email, password_hash=await hash_password(TEST_PASSWORD), roles={Role.PATIENT},
            display_name=f"{given} Tester", patient_id=created["id"], email_verified=True,
            profile_complete=True)
        return str(created["id"])

    return portal.run(make()), email


def _slot(portal: LivePortal, schedule: str) -> dict:
    return portal.run(private_slot(portal.app[keys.GATEWAY], schedule))


def _visit(page: Page, url: str) -> None:
    page.goto(url)
    check_accessibility(page)


def _choose_time(page: Page, slot: dict) -> None:
    day = datetime.fromisoformat(slot["start"]).astimezone(TZ).date().isoformat()
    page.get_by_label("Date", exact=True).fill(day)
    page.get_by_role("button", name="Apply").first.click()
    check_accessibility(page)
    page.locator(f'input[value="{slot["id"]}"]').check()
    page.get_by_role("button", name="Apply").last.click()
    check_accessibility(page)
    expect(page.get_by_role("heading", name="Check your contact details")).to_be_visible()
    page.get_by_role("button", name="Next").click()
    check_accessibility(page)
    expect(page.get_by_role("heading", name="Confirm your appointment")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()
    check_accessibility(page)


def test_book_a_clinic_visit_by_postal_code_then_check_in_from_the_email(
    mail_portal: LivePortal, smtp_sink: SmtpSink, page: Page
) -> None:
    _, email = _patient(mail_portal, "Clara")
    slot = _slot(mail_portal, "sched-mette-hansen")
    base = mail_portal.url
    sign_in(page, base, email, TEST_PASSWORD)
    _visit(page, f"{base}/appointments")
    page.get_by_role("link", name="Schedule new appointment").click()
    check_accessibility(page)
    page.get_by_label("Clinic appointment").check()
    page.get_by_role("button", name="Next").click()
    check_accessibility(page)
    page.get_by_label("Family medicine").check()
    page.get_by_role("button", name="Next").click()
    check_accessibility(page)
    page.get_by_label("Postal code").fill("2300")
    page.get_by_role("button", name="Search").click()
    check_accessibility(page)
    expect(page.get_by_text("km away").first).to_be_visible()
    page.get_by_label("Contoso Clinic Copenhagen").check()
    page.get_by_role("button", name="Next").click()
    check_accessibility(page)
    _choose_time(page, slot)
    expect(page.get_by_text("Your appointment is booked")).to_be_visible()
    expect(page.get_by_text("Østerbrogade 120")).to_be_visible()

    message = smtp_sink.wait_for(email, timeout=30)
    link = next(u for u in links_in(message) if "/checkin/" in u)
    _visit(page, link)
    page.get_by_role("link", name="Start here").click()
    check_accessibility(page)
    page.get_by_role("link", name="Confirm the details").click()
    check_accessibility(page)
    page.get_by_label("Mobile number").fill("+45 20 30 40 50")
    page.get_by_role("button", name="Save and continue").click()
    check_accessibility(page)
    page.get_by_label("Add a new insurance").check()
    page.get_by_label("Insurer name").fill("Sygeforsikring danmark")
    page.get_by_label("Member number").fill(f"SD{uuid.uuid4().hex[:6]}")
    page.get_by_label("Plan (optional)").fill("Gruppe 1")
    page.get_by_label("Valid from").fill("2026-01-01")
    page.get_by_role("button", name="Continue").click()
    check_accessibility(page)
    expect(page.get_by_text("Sygeforsikring danmark")).to_be_visible()
    page.get_by_label("I confirm that the information is correct", exact=False).check()
    page.get_by_role("button", name="Check in").click()
    check_accessibility(page)
    expect(page.get_by_role("heading", name="You are checked in")).to_be_visible()
    page.goto(link)  # the used link says so
    check_accessibility(page)
    expect(page.get_by_text("already checked in")).to_be_visible()


def test_book_and_cancel_a_virtual_appointment(mail_portal: LivePortal, page: Page) -> None:
    _, email = _patient(mail_portal, "Viktor")
    slot = _slot(mail_portal, "sched-jens-rasmussen")
    base = mail_portal.url
    sign_in(page, base, email, TEST_PASSWORD)
    _visit(page, f"{base}/appointments/new")
    page.get_by_label("Virtual appointment").check()
    page.get_by_role("button", name="Next").click()
    check_accessibility(page)
    page.get_by_label("Cardiology").check()
    page.get_by_role("button", name="Next").click()
    check_accessibility(page)
    # Previous keeps the choice made
    page.get_by_role("link", name="Previous").click()
    check_accessibility(page)
    expect(page.get_by_label("Cardiology")).to_be_checked()
    page.get_by_role("button", name="Next").click()
    _choose_time(page, slot)
    expect(page.get_by_text("Jens Rasmussen")).to_be_visible()
    page.get_by_role("link", name="Cancel appointment").click()
    check_accessibility(page)
    page.get_by_role("button", name="Yes, cancel the appointment").click()
    check_accessibility(page)
    expect(page.get_by_text("The appointment has been cancelled")).to_be_visible()
    slot_now = mail_portal.run(mail_portal.app[keys.GATEWAY].read("Slot", slot["id"],
                                                                  fresh=True))
    assert slot_now["status"] == "free"


def test_instant_queue_taken_by_a_clinician(
    mail_portal: LivePortal, browser: Browser, page: Page
) -> None:
    given = f"Quinn{uuid.uuid4().hex[:4]}"
    _, email = _patient(mail_portal, given)
    base = mail_portal.url
    sign_in(page, base, email, TEST_PASSWORD)
    _visit(page, f"{base}/appointments/new")
    page.get_by_label("Instant virtual visit").check()
    page.get_by_role("button", name="Next").click()
    check_accessibility(page)
    page.get_by_label("Family medicine").check()
    page.get_by_role("button", name="Next").click()
    check_accessibility(page)
    page.get_by_role("button", name="Join the queue").click()
    check_accessibility(page)
    expect(page.get_by_text("in the queue")).to_be_visible()

    staff_email = f"clin-{uuid.uuid4().hex[:6]}@contoso.example"

    async def clinician() -> None:
        await mail_portal.app[keys.ACCOUNTS].create_account(
            staff_email, password_hash=await hash_password(TEST_PASSWORD),
            roles={Role.CLINICIAN}, display_name="Dr Test", practitioner_id="prac-mette-hansen",
            email_verified=True, profile_complete=True)

    mail_portal.run(clinician())
    context = browser.new_context(bypass_csp=True, locale="en-GB")
    staff = context.new_page()
    try:
        sign_in(staff, base, staff_email, TEST_PASSWORD)
        _visit(staff, f"{base}/staff/queue")
        staff.get_by_role("button", name=f"Take {given} Tester").click()
        check_accessibility(staff)
        expect(staff.get_by_role("link", name="Start the video visit")).to_be_visible()
    finally:
        context.close()
    # the waiting page updates by itself (JavaScript polling) with the visit link
    expect(page.get_by_role("link", name="Join the video visit")).to_be_visible(timeout=20_000)
    check_accessibility(page)
