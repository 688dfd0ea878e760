"""Medical records pages: overview, the six lists, a visit with its notes, and the download.

Also home of the small display helpers the home and activities pages share: dates and
times in the patient's time zone and the page locale (Babel), and translated labels for
FHIR status codes (a code the portal does not know is shown as it is).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_date, format_skeleton, format_time

from fhir_portal import keys
from fhir_portal.fhir.model import parse_datetime
from fhir_portal.i18n import N_
from fhir_portal.resources import records
from fhir_portal.web.context import locale, patient_scope
from fhir_portal.web.render import render, translate

# the Formatter's methods named date/datetime shadow the types inside its class body
_Date: TypeAlias = date
_DateTime: TypeAlias = datetime


# -- display helpers (shared by the home and activities views) --------------------------
class Formatter:
    """Dates and times for one page: the patient's time zone, the page's locale."""

    def __init__(self, language: str, tz: tzinfo) -> None:
        self.locale = language
        self.tz = tz

    def _aware(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz) if moment.tzinfo else moment.replace(tzinfo=self.tz)

    def when(self, value: str | date | datetime | None) -> str:
        """A FHIR date/dateTime string (any precision) or a date/datetime, for reading."""
        if value is None or value == "":
            return ""
        if isinstance(value, datetime):
            return self.datetime(value)
        if isinstance(value, date):
            return self.date(value)
        text = str(value)
        moment = parse_datetime(text)
        if moment is None:
            return text  # e.g. onsetString: shown as written
        if len(text) == 4:
            return text
        if len(text) == 7:
            return format_skeleton("yMMM", moment, locale=self.locale)
        if len(text) == 10:
            return self.date(moment.date())
        return self.datetime(moment)

    def date(self, value: date | datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = self._aware(value).date()
        return format_date(value, "medium", locale=self.locale)

    def last_day(self, end: datetime | None) -> str:
        """The last day a period ending (exclusively) at ``end`` covers, as a date."""
        if end is None:
            return ""
        return self.date(self._aware(end) - timedelta(microseconds=1))

    def time(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_time(self._aware(value), "short", locale=self.locale)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return ""
        local = self._aware(value)
        return f"{format_date(local.date(), 'medium', locale=self.locale)} {self.time(local)}"

    def iso(self, value: str | _Date | _DateTime | None) -> str:
        """A machine-readable value for <time datetime="...">."""
        if value is None:
            return ""
        if isinstance(value, datetime | date):
            return value.isoformat()
        return str(value)


LABELS: dict[str, str] = {
    # clinical and record statuses
    "active": N_("Active"),
    "inactive": N_("Inactive"),
    "resolved": N_("Resolved"),
    "recurrence": N_("Recurrence"),
    "relapse": N_("Relapse"),
    "remission": N_("In remission"),
    "confirmed": N_("Confirmed"),
    "unconfirmed": N_("Unconfirmed"),
    "provisional": N_("Provisional"),
    "differential": N_("Differential"),
    "refuted": N_("Refuted"),
    "completed": N_("Completed"),
    "stopped": N_("Stopped"),
    "on-hold": N_("On hold"),
    "intended": N_("Intended"),
    "not-taken": N_("Not taken"),
    "unknown": N_("Unknown"),
    "draft": N_("Draft"),
    "cancelled": N_("Cancelled"),
    "entered-in-error": N_("Entered in error"),
    "planned": N_("Planned"),
    "arrived": N_("Arrived"),
    "triaged": N_("Triaged"),
    "in-progress": N_("In progress"),
    "onleave": N_("On leave"),
    "finished": N_("Finished"),
    "revoked": N_("Revoked"),
    "proposed": N_("Proposed"),
    "suspended": N_("Suspended"),
    "not-started": N_("Not started"),
    "scheduled": N_("Scheduled"),
    "requested": N_("Requested"),
    "received": N_("Received"),
    "accepted": N_("Accepted"),
    "rejected": N_("Rejected"),
    "ready": N_("Ready"),
    "failed": N_("Failed"),
    "improving": N_("Improving"),
    "worsening": N_("Worsening"),
    "no-change": N_("No change"),
    "achieved": N_("Achieved"),
    "sustaining": N_("Sustaining"),
    "not-achieved": N_("Not achieved"),
    "no-progress": N_("No progress"),
    "not-attainable": N_("Not attainable"),
    # allergies
    "high": N_("High risk"),
    "low": N_("Low risk"),
    "unable-to-assess": N_("Risk not assessed"),
    "mild": N_("Mild"),
    "moderate": N_("Moderate"),
    "severe": N_("Severe"),
    "allergy": N_("Allergy"),
    "intolerance": N_("Intolerance"),
    "food": N_("Food"),
    "medication": N_("Medicine"),
    "environment": N_("Environment"),
    "biologic": N_("Biologic"),
    # medication sources
    "MedicationRequest": N_("Prescription"),
    "MedicationStatement": N_("Medicine list"),
    # contact points
    "phone": N_("Phone"),
    "email": N_("Email"),
    "fax": N_("Fax"),
    "url": N_("Web"),
    "sms": N_("Text message"),
    "pager": N_("Pager"),
    "other": N_("Other"),
    # activity kinds
    "Appointment": N_("Appointment"),
    "Task": N_("Task"),
}


def display_context(request: web.Request) -> dict[str, Any]:
    """``fmt`` (dates and times) and ``label`` (status codes) for templates."""
    settings = request.app[keys.SETTINGS]

    def label(code: str | None) -> str:
        if not code:
            return ""
        known = LABELS.get(code)
        return translate(request, known) if known else code

    return {"fmt": Formatter(locale(request), ZoneInfo(settings.timezone)), "label": label}


def patient_tz(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[keys.SETTINGS].timezone)


def page_number(request: web.Request) -> int:
    try:
        return max(1, min(int(request.query.get("page", "1")), 10_000))
    except ValueError:
        return 1


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
    result = await records.download(scope, datetime.now(patient_tz(request)))
    return web.Response(
        body=result.body,
        content_type="application/fhir+json",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "Cache-Control": "no-store",
        },
    )
