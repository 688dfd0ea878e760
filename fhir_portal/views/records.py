"""Medical records pages: overview, the six lists, a visit with its notes, and the download.

Dates, times and status labels come from ``fhir_portal.web.format.display_context``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from fhir_portal.resources import records
from fhir_portal.web.context import page_number, patient_scope, tz
from fhir_portal.web.format import display_context
from fhir_portal.web.render import render


# -- pages ---------------------------------------------------------------------------------
async def overview(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    counts = await records.counts(scope)
    return render(request, "records/overview.html", {"counts": counts, **display_context(request)})


def _list_view(
    loader: Callable[..., Awaitable[records.Paged[Any]]], template: str, route: str
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def view(request: web.Request) -> web.Response:
        scope = patient_scope(request)
        paged = await loader(scope, page=page_number(request))
        return render(
            request,
            template,
            {
                "paged": paged,
                "current_items": [i for i in paged.items if i.current],
                "past_items": [i for i in paged.items if not i.current],
                "page_url": str(request.app.router[route].url_for()),
                **display_context(request),
            },
        )

    return view


medications = _list_view(records.medications, "records/medications.html", "records-medications")
allergies = _list_view(records.allergies, "records/allergies.html", "records-allergies")
conditions = _list_view(records.conditions, "records/conditions.html", "records-conditions")
visits = _list_view(records.visits, "records/visits.html", "records-visits")
care_plans = _list_view(records.care_plans, "records/care_plans.html", "records-care-plans")
care_teams = _list_view(records.care_teams, "records/care_teams.html", "records-care-teams")


async def visit(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    item = await records.visit(scope, request.match_info["id"])
    return render(request, "records/visit.html", {"visit": item, **display_context(request)})


async def download(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    result = await records.download(scope, datetime.now(tz(request)))
    return web.Response(
        body=result.body,
        content_type="application/fhir+json",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "Cache-Control": "no-store",
        },
    )
