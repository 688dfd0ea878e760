"""Sign in and sign out."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from fhir_portal import keys
from fhir_portal.auth.login import EmailNotVerified, LoginRefused, authenticate
from fhir_portal.web.context import principal
from fhir_portal.web.render import render, translate
from fhir_portal.web.session import end_session, start_session


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths are followed after sign-in (no open redirect)."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return default
    return value


async def login_form(request: web.Request) -> web.Response:
    if principal(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return render(request, "auth/login.html", {"next": safe_next(request.query.get("next")),
                                               "email": "", "error": None})


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "")))
    store = request.app[keys.ACCOUNTS]
    error = None
    if not email or not password:
        error = translate(request, "Enter your email and password.")
    else:
        try:
            account = await authenticate(store, email, password)
        except LoginRefused:
            error = translate(request, "The email or password is not right, or the account is "
                            "locked for a while after too many attempts.")
        except EmailNotVerified:
            error = translate(request, "Please confirm your email address first: open the link "
                            "we sent you.")
        else:
            if account.is_staff_only and next_url == "/":
                next_url = "/staff"
            if account.roles and not account.profile_complete and account.patient_id:
                next_url = "/profile?first=1"
            response = web.HTTPSeeOther(next_url)
            await start_session(request, response, account)
            raise response
    return render(request, "auth/login.html", {"next": next_url, "email": email, "error": error},
                  status=400 if error else 200)


async def logout_form(request: web.Request) -> web.Response:
    return render(request, "auth/logout.html")


async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/login?signed_out=1")
    await end_session(request, response)
    raise response
