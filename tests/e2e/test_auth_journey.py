"""In the browser: register, confirm by email, first-sign-in profile, sign out and in,
reset the password by email, sign in with the new one; axe-core on every page."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LivePortal, check_accessibility, sign_in
from tests.smtp import SmtpSink, links_in

PASSWORD = "blue hills at dawn"
NEW_PASSWORD = "green fields at dusk"


def _sign_out(page: Page) -> None:
    page.locator("details.user-menu summary").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("You are signed out")


def test_register_verify_profile_sign_in_and_reset(page: Page, mail_portal: LivePortal,
                                                   smtp_sink: SmtpSink) -> None:
    base = mail_portal.url
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.org"

    page.goto(f"{base}/login")
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an account")
    check_accessibility(page)
    page.get_by_label("First name").fill("Freja")
    page.get_by_label("Last name").fill("Holm")
    page.get_by_label("Birth date").fill("1985-02-03")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Mobile phone (optional)").fill("+45 20 30 40 50")
    page.get_by_label("Password", exact=True).fill("password1")
    page.get_by_label("Repeat the password").fill("password1")
    page.get_by_role("button", name="Create account").click()
    # a too-common password is refused on the same form, input kept
    expect(page.locator("#password-error")).to_contain_text("too common")
    expect(page.get_by_label("First name")).to_have_value("Freja")
    check_accessibility(page)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    check_accessibility(page)

    message = smtp_sink.wait_for(email, timeout=15)
    link = next(link for link in links_in(message) if "/register/verify" in link)
    page.goto(link)
    expect(page).to_have_url(f"{base}/login?confirmed=1")
    expect(page.get_by_role("status")).to_contain_text("Your email address is confirmed")
    check_accessibility(page)
    sign_in(page, base, email, PASSWORD)
    expect(page).to_have_url(f"{base}/profile?first=1")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    expect(page.get_by_label("First name")).to_have_value("Freja")
    check_accessibility(page)
    page.get_by_label("Mobile phone (optional)").fill("+45 20 30 40 51")
    page.get_by_role("button", name="Update").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Freja")
    check_accessibility(page)
    # the user menu opens the profile and the account page
    page.locator("details.user-menu summary").click()
    page.get_by_role("link", name="Account and security").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Account and security")
    check_accessibility(page)

    _sign_out(page)
    check_accessibility(page)
    sign_in(page, base, email, PASSWORD)
    expect(page).to_have_url(f"{base}/")
    _sign_out(page)

    before = len(smtp_sink.messages)
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset your password")
    check_accessibility(page)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    check_accessibility(page)
    reset = smtp_sink.wait_for(email, timeout=15, after=before)
    reset_link = next(link for link in links_in(reset) if "/password-reset/" in link)
    page.goto(reset_link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    check_accessibility(page)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    expect(page).to_have_url(f"{base}/login?reset=1")
    check_accessibility(page)

    sign_in(page, base, email, PASSWORD)  # the old password no longer works
    expect(page.get_by_role("alert")).to_contain_text("not right")
    sign_in(page, base, email, NEW_PASSWORD)
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Freja")


def test_activation_by_code_and_the_staff_console(page: Page, mail_portal: LivePortal) -> None:
    from fhir_portal import keys
    from fhir_portal.auth.activation import create_invitation
    from fhir_portal.auth.staff import create_staff

    base = mail_portal.url
    store = mail_portal.app[keys.ACCOUNTS]
    email = f"act-{uuid.uuid4().hex[:8]}@example.org"
    _, code = mail_portal.run(create_invitation(store, mail_portal.settings, "pat-bjorn", email))

    page.goto(f"{base}/login")
    page.get_by_role("link", name="Activate your account with a code").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Activate your account")
    check_accessibility(page)
    page.get_by_label("Activation code").fill("WRONG-CODE1")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be used")
    check_accessibility(page)
    page.get_by_label("Activation code").fill(code)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Activate").click()
    expect(page).to_have_url(f"{base}/profile?first=1")
    expect(page.get_by_label("First name")).not_to_have_value("")
    page.get_by_label("Preferred language").select_option("da")
    page.get_by_role("button", name="Update").click()
    # the preferred language becomes the portal's language
    expect(page).to_have_url(f"{base}/")
    expect(page.locator("html")).to_have_attribute("lang", "da")
    page.goto(f"{base}/staff")
    expect(page.get_by_role("heading", level=1)).to_have_text("Du har ikke adgang til denne side")
    check_accessibility(page)
    page.locator("details.user-menu summary").click()
    page.get_by_role("button", name="Log ud", exact=True).click()

    staff_email = f"agent-{uuid.uuid4().hex[:6]}@contoso.example"
    mail_portal.run(create_staff(store, email=staff_email, role="agent", password=PASSWORD,
                                 name="Agnes Agent"))
    page.get_by_label("Sprog").select_option("en")
    page.get_by_role("button", name="Skift sprog").click()
    sign_in(page, base, staff_email, PASSWORD)
    expect(page).to_have_url(f"{base}/staff")
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff console")
    expect(page.get_by_text("Signed in as Agnes Agent")).to_be_visible()
    check_accessibility(page)
    page.goto(f"{base}/records")
    expect(page.get_by_role("heading", level=1)).to_have_text("You do not have access to this page")
