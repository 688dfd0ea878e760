"""Activities: current, overdue and completed care-plan activities; mark one done."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.resources import activities
from fhir_portal.web.context import patient_scope, tz
from fhir_portal.web.format import display_context
from fhir_portal.web.notices import activity_done_notice
from fhir_portal.web.render import render, translate

# where a "mark done" form may send the patient back to
RETURN_PATHS = {"/", "/activities"}


async def _page(
    request: web.Request, *, error: str | None = None, status: int = 200, fresh: bool = False
) -> web.Response:
    scope = patient_scope(request)
    groups = await activities.overview(scope, tz(request), fresh=fresh)
    notice = activity_done_notice(request)
    return render(
        request,
        "activities/index.html",
        {
            "groups": groups,
            "notice": notice,
            "error": error,
            "return_to": "/activities",
            **display_context(request),
        },
        status=status,
    )


async def index(request: web.Request) -> web.Response:
    return await _page(request)


async def mark_done(request: web.Request) -> web.StreamResponse:
    scope = patient_scope(request)
    form = await request.post()
    return_to = str(form.get("next") or "/activities")
    if return_to not in RETURN_PATHS:
        return_to = "/activities"
    try:
        index = int(str(form.get("index", "-1")))
    except ValueError:
        index = -1
    try:
        result = await activities.mark_done(
            scope,
            source=str(form.get("source", "")),
            resource_id=str(form.get("id", "")),
            index=index,
            version=str(form.get("version", "")) or None,
            title=str(form.get("title", "")),
            tz=tz(request),
        )
    except activities.ActivityChanged:
        return await _page(
            request,
            error=translate(
                request,
                "This activity was changed by your care team since you opened the page. "
                "Check it below and mark it as done again if it still applies.",
            ),
            status=409,
            fresh=True,
        )
    except activities.NotSelfCare:
        return await _page(
            request,
            error=translate(request, "Only your care team can mark this activity as done."),
            status=403,
        )
    flag = "already" if result.already_done else "1"
    raise web.HTTPSeeOther(f"{return_to}?done={flag}")
