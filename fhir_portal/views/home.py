"""The home page: today's activities, the next appointments, the latest messages."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.resources import home as home_resource
from fhir_portal.web.context import patient_scope, signed_in, tz
from fhir_portal.web.format import display_context
from fhir_portal.web.notices import activity_done_notice
from fhir_portal.web.render import render


async def home(request: web.Request) -> web.Response:
    who = signed_in(request)
    if not who.is_patient:
        raise web.HTTPSeeOther("/staff")
    scope = patient_scope(request)
    view = await home_resource.overview(scope, tz(request))
    notice = activity_done_notice(request)
    return render(
        request,
        "home.html",
        {
            "view": view,
            "patient": view.patient,
            "notice": notice,
            "error": None,
            "return_to": "/",
            **display_context(request),
        },
    )
