"""SMART on FHIR launch (EHR and standalone) and its callback."""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from fhir_portal import keys
from fhir_portal.auth import smart
from fhir_portal.fhir import FhirError, PatientScope
from fhir_portal.i18n import N_
from fhir_portal.resources import patients
from fhir_portal.web.context import smart_gateway
from fhir_portal.web.render import render, translate
from fhir_portal.web.session import start_smart_session

log = logging.getLogger(__name__)

PREAUTH_COOKIE = "portal_smart"


def _refused(request: web.Request, reason: str, status: int = 400) -> web.Response:
    return render(request, "auth/message.html", {
        "heading": translate(request, "The health record app could not be opened"),
        "lines": [translate(request, reason)],
        "link": ("/login", translate(request, "Sign in to the portal instead")),
    }, status=status)


async def launch(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    iss = smart.normalize_iss(request.query.get("iss", ""))
    launch_id = request.query.get("launch")
    if not iss or not smart.allowed_iss(settings, iss):
        return _refused(request, N_("This health record system is not one the portal works "
                                    "with."), status=403)
    if not settings.smart_client_id:
        return _refused(request, N_("Opening the portal from a health record system is not "
                                    "set up."), status=503)
    try:
        server = await smart.discover(iss)
        url, state, saved = smart.authorization_request(settings, server, launch_id)
    except smart.SmartError as exc:
        log.info("SMART launch refused: %s", exc)
        return _refused(request, exc.reason, status=502)
    browser = request.cookies.get(PREAUTH_COOKIE) or secrets.token_urlsafe(24)
    await request.app[keys.ACCOUNTS].save_auth_state(state, "smart", browser, saved)
    response = web.HTTPSeeOther(url)
    response.set_cookie(PREAUTH_COOKIE, browser, path="/smart", httponly=True, samesite="Lax",
                        secure=settings.cookie_secure, max_age=600)
    raise response


async def callback(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    store = request.app[keys.ACCOUNTS]
    state = request.query.get("state", "")
    browser = request.cookies.get(PREAUTH_COOKIE, "")
    saved = await store.take_auth_state(state, "smart", browser) if state and browser else None
    if saved is None:
        return _refused(request, N_("The sign-in took too long or was started elsewhere. "
                                    "Please open the app again."))
    if request.query.get("error"):
        log.info("SMART authorization refused: %r", request.query.get("error", "")[:64])
        return _refused(request, N_("Access was not granted, so the portal cannot show your "
                                    "health information."), status=403)
    code = request.query.get("code", "")
    if not code:
        return _refused(request, N_("The health record system did not complete the sign-in."))
    try:
        data = await smart.exchange(settings, code, saved)
    except smart.SmartError as exc:
        log.info("SMART token exchange refused: %s", exc)
        return _refused(request, exc.reason)
    try:
        scope = PatientScope(smart_gateway(request, data), data["patient"])
        data["name"] = (await patients.summary(scope)).name
    except FhirError as exc:  # the name is a nicety; the session works without it
        log.info("SMART patient name not read: %s", type(exc).__name__)
    response = web.HTTPSeeOther("/")
    response.del_cookie(PREAUTH_COOKIE, path="/smart")
    await start_smart_session(request, response, data)
    raise response
