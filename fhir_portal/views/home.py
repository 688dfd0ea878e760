"""The home page: today's activities, the next appointments, the latest messages."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.resources import home as home_resource
from fhir_portal.web.context import patient_scope, signed_in, tz
from fhir_portal.web.format import display_context
from fhir_portal.web.notices import activity_done_notice
from fhir_portal.web.render import current_badges, render


async def home(request: web.Request) -> web.Response:
    who = signed_in(request)
    if not who.is_patient:
        raise web.HTTPSeeOther("/staff")
    scope = patient_scope(request)

    async def badge_count() -> int | None:  # the navigation badge already counts unread
        badge = (await current_badges(request)).get("/messages")
        return badge.count if badge is not None else None

    view = await home_resource.overview(scope, tz(request), known_unread=badge_count)
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
