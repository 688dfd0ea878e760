"""Role x route: every route of the app router, for anonymous, patient, agent, clinician, admin.

Each route name has a class below. A route another helper adds without an entry here fails
``test_every_route_has_an_expectation`` with its name: add it to ROUTE_CLASS.
"""

from __future__ import annotations

import re

import pytest

from fhir_portal.auth.roles import Role
from tests.integration.conftest import make_patient_account, make_staff_account
from tests.support import csrf_of, sign_in

PUBLIC = "public"          # never asks anyone to sign in
SIGNED_IN = "signed-in"    # any signed-in account
PATIENT = "patient"        # patients only; staff without a patient context are refused
STAFF = "staff"            # agent, clinician, admin
CLINICIAN = "clinician"    # clinicians only
EXTERNAL = "external"      # authenticated otherwise (the FHIR server's hook secret)
TOKEN = "token"            # a secret in the address decides: an unknown one is 404 for all

ROUTE_CLASS: dict[str, str] = {
    "healthz": PUBLIC, "login": PUBLIC, "login-submit": PUBLIC, "logout": PUBLIC,
    "logout-form": PUBLIC, "language": PUBLIC, "static": PUBLIC,
    "register": PUBLIC, "register-submit": PUBLIC, "register-verify": PUBLIC,
    "register-resend": PUBLIC,
    "activate": PUBLIC, "activate-submit": PUBLIC,
    "password-reset": PUBLIC, "password-reset-submit": PUBLIC,
    "password-reset-token": PUBLIC, "password-reset-token-submit": PUBLIC,
    "oidc-start": PUBLIC, "oidc-callback": PUBLIC,
    "smart-launch": PUBLIC, "smart-callback": PUBLIC,
    "account": SIGNED_IN, "account-password": SIGNED_IN, "account-sign-out-others": SIGNED_IN,
    "account-sign-out-everywhere": SIGNED_IN, "account-unlink": SIGNED_IN,
    "knowledge": SIGNED_IN, "knowledge-article": SIGNED_IN,
    "home": PATIENT, "profile": PATIENT, "profile-submit": PATIENT,
    "messages": PATIENT, "messages-sent": PATIENT, "messages-new": PATIENT,
    "messages-send": PATIENT, "messages-thread": PATIENT, "messages-reply": PATIENT,
    "messages-attachment": PATIENT,
    "records": PATIENT, "records-medications": PATIENT, "records-allergies": PATIENT,
    "records-conditions": PATIENT, "records-visits": PATIENT, "records-visit": PATIENT,
    "records-care-plans": PATIENT, "records-care-teams": PATIENT, "records-download": PATIENT,
    "activities": PATIENT, "activities-done": PATIENT,
    "chat": PATIENT, "chat-send": PATIENT, "chat-new": PATIENT, "chat-ws": PATIENT,
    "staff": STAFF, "staff-chats": STAFF, "staff-chats-ws": STAFF, "staff-chats-chat": STAFF,
    "staff-chats-chat-ws": STAFF, "staff-chats-accept": STAFF, "staff-chats-message": STAFF,
    "staff-chats-article": STAFF, "staff-chats-close": STAFF,
    "staff-messages": CLINICIAN, "staff-messages-thread": CLINICIAN,
    "staff-messages-reply": CLINICIAN, "staff-messages-attachment": CLINICIAN,
    "appointments": PATIENT, "appointments-book": PATIENT, "appointments-cancel": PATIENT,
    "appointments-cancel-form": PATIENT, "appointments-confirm": PATIENT,
    "appointments-detail": PATIENT, "appointments-new": PATIENT, "appointments-queue": PATIENT,
    "appointments-queue-join": PATIENT, "appointments-queue-json": PATIENT,
    "appointments-queue-leave": PATIENT,
    "checkin": TOKEN, "checkin-details": TOKEN, "checkin-done": TOKEN,
    "checkin-insurance": TOKEN, "checkin-join": TOKEN, "checkin-personal": TOKEN,
    "staff-queue": CLINICIAN, "staff-queue-take": CLINICIAN,
    "fhir-hook": EXTERNAL,
}
ALLOWED: dict[str, set[str]] = {
    PUBLIC: {"anonymous", "patient", "agent", "clinician", "admin"},
    SIGNED_IN: {"patient", "agent", "clinician", "admin"},
    PATIENT: {"patient"},
    STAFF: {"agent", "clinician", "admin"},
    CLINICIAN: {"clinician"},
}
# routes that end the session: run last, then sign in again
ENDS_SESSION = ("logout", "account-sign-out-everywhere")


def _routes(app):  # type: ignore[no-untyped-def]
    seen = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        seen.append((route.name or route.resource.canonical, route.method,
                     route.resource.canonical))
    return seen


async def test_every_route_has_an_expectation(app):
    missing = sorted({name for name, _, _ in _routes(app) if name not in ROUTE_CLASS})
    assert not missing, (f"routes without an expected access class in {__file__}: {missing}; "
                         "add them to ROUTE_CLASS")


def _refused(status: int, location: str) -> bool:
    return (status in (401, 403) or location.startswith("/login?next=")
            or location.startswith("/staff"))


@pytest.mark.parametrize("role", ["anonymous", "patient", "agent", "clinician", "admin"])
async def test_role_route_matrix(client, accounts, role):
    email = None
    if role == "patient":
        email = await make_patient_account(accounts, "pat-anna")
    elif role != "anonymous":
        email = await make_staff_account(accounts, Role(role),
                                         "prac-1" if role == "clinician" else None)

    async def login() -> None:
        if email:
            response = await sign_in(client, email)
            assert response.status == 303

    await login()
    routes = sorted(_routes(client.app), key=lambda r: r[0] in ENDS_SESSION)
    failures = []
    for name, method, canonical in routes:
        kind = ROUTE_CLASS.get(name)
        if kind in (None, EXTERNAL):
            continue
        path = re.sub(r"\{[^}]*\}", "no-such-id-1", canonical)
        if name == "static":
            path = "/static/portal.css"
        if name == "password-reset-token" or name == "password-reset-token-submit":
            path = "/password-reset/" + "x" * 43
        origin = {"Origin": str(client.make_url("/")).rstrip("/")}  # WebSocket handshakes
        if method == "GET":
            response = await client.get(path, allow_redirects=False, headers=origin)
        else:
            page = await client.get("/login" if role == "anonymous" else "/account")
            token = csrf_of(await page.text()) if page.status == 200 else ""
            response = await client.post(path, data={"csrf_token": token},
                                         allow_redirects=False)
        location = response.headers.get("Location", "")
        refused = _refused(response.status, location)
        if kind == PUBLIC:
            ok = not location.startswith("/login?next")
        elif kind == TOKEN:
            ok = response.status == 404
        else:
            ok = refused != (role in ALLOWED[kind])
        if response.status >= 500:  # an empty or unknown input is never a server error
            ok = False
        if not ok:
            failures.append(f"{method} {path} ({name}, {kind}): {response.status} {location}")
        if name in ENDS_SESSION:
            await login()
    assert not failures, f"{role}:\n" + "\n".join(failures)
