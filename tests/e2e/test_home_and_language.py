"""A patient signs in, sees the home page, and switches the language; axe on each page."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from fhir_portal.auth.store import AccountStore
from tests.e2e.conftest import LivePortal, check_accessibility, sign_in

PASSWORD = "a long e2e password"


def _account(portal: LivePortal, email: str, patient_id: str) -> None:
    from fhir_portal import keys

    store: AccountStore = portal.app[keys.ACCOUNTS]

    async def create() -> None:
        if await store.account_by_email(email) is None:
            await store.create_account(
                email, password_hash=await hash_password(PASSWORD), roles={Role.PATIENT},
                display_name="Chloe Smith", patient_id=patient_id, locale="en",
                email_verified=True, profile_complete=True,
            )

    portal.run(create())


def test_sign_in_home_and_language_switch(page: Page, portal: LivePortal) -> None:
    page.goto(f"{portal.url}/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check_accessibility(page)

    _account(portal, "e2e-chloe@example.org", "pat-chloe")
    sign_in(page, portal.url, "e2e-chloe@example.org", PASSWORD)
    expect(page).to_have_url(f"{portal.url}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Chloe")
    # the portal title links home
    expect(page.get_by_role("link", name=portal.settings.title)).to_have_attribute("href", "/")
    check_accessibility(page)

    page.get_by_label("Language").select_option("da")
    page.get_by_role("button", name="Change language").click()
    expect(page.locator("html")).to_have_attribute("lang", "da")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Velkommen")
    check_accessibility(page)

    page.get_by_label("Sprog").select_option("en")
    page.get_by_role("button", name="Skift sprog").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
