"""The home page: today's activities, the next appointments, the latest messages."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.resources import home as home_resource
from fhir_portal.web.context import patient_scope, signed_in, tz
from fhir_portal.web.format import display_context
from fhir_portal.web.render import render, translate


async def home(request: web.Request) -> web.Response:
    who = signed_in(request)
    if not who.is_patient:
        raise web.HTTPSeeOther("/staff")
    scope = patient_scope(request)
    view = await home_resource.overview(scope, tz(request))
    notice = None
    if request.query.get("done") == "1":
        notice = translate(request, "Well done! The activity is marked as done.")
    elif request.query.get("done") == "already":
        notice = translate(request, "This activity was already marked as done.")
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
