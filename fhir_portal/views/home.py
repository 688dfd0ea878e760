"""The home page."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.resources import patients
from fhir_portal.web.context import patient_scope, signed_in
from fhir_portal.web.render import render


async def home(request: web.Request) -> web.Response:
    who = signed_in(request)
    if not who.is_patient:
        raise web.HTTPSeeOther("/staff")
    scope = patient_scope(request)
    patient = await patients.summary(scope)
    return render(request, "home.html", {"patient": patient})
