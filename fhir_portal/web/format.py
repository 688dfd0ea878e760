"""Dates, times and numbers for one page: the patient's time zone, the page's locale (Babel).

The one formatter every view and template uses. Templates get it as ``fmt`` (see
``display_context``), e.g. ``{{ fmt.when(item.date) }}``, ``{{ fmt.full(slot.start) }}``;
views build it with ``formatter(request)``. The styles:

* ``when``: a FHIR date/dateTime of any precision (or a date/datetime) for reading
  (records: "2 Mar 2025", "Mar 2025", "2 Mar 2025 14:30");
* ``date`` (medium), ``long_date``, ``day`` (full, with the weekday), ``time`` (short),
  ``datetime`` (medium date and time), ``full`` (full date, time: appointments),
  ``stamp`` (medium date, time: messages), ``short`` (short date and time: chat);
* ``last_day`` for a period ending exclusively at a moment; ``iso``/``local_iso`` for
  ``<time datetime>``; ``km`` for distances.

Also ``label``: translated names for FHIR status codes (a code the portal does not know is
shown as it is).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import Any, TypeAlias

from aiohttp import web
from babel.dates import format_date, format_datetime, format_skeleton, format_time
from babel.numbers import format_decimal

from fhir_portal.fhir.model import parse_datetime
from fhir_portal.i18n import N_
from fhir_portal.web.context import locale, tz
from fhir_portal.web.render import translate

# the Formatter's methods named date/datetime shadow the types inside its class body
_Date: TypeAlias = date
_DateTime: TypeAlias = datetime


class Formatter:
    """Dates and times for one page: the patient's time zone, the page's locale."""

    def __init__(self, language: str, zone: tzinfo) -> None:
        self.locale = language
        self.tz = zone

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the patient's zone (a naive value is taken to be local already)."""
        return moment.astimezone(self.tz) if moment.tzinfo else moment.replace(tzinfo=self.tz)

    def when(self, value: str | _Date | _DateTime | None) -> str:
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

    def _day(self, value: _Date | _DateTime, style: str) -> str:
        if isinstance(value, datetime):
            value = self.local(value).date()
        return format_date(value, style, locale=self.locale)

    def date(self, value: _Date | _DateTime | None) -> str:
        """Medium date ("2 Mar 2025")."""
        return self._day(value, "medium") if value is not None else ""

    def long_date(self, value: _Date | _DateTime | None) -> str:
        """Long date ("2 March 2025")."""
        return self._day(value, "long") if value is not None else ""

    def day(self, value: _Date | _DateTime | None) -> str:
        """Full date with the weekday ("Sunday, 2 March 2025")."""
        return self._day(value, "full") if value is not None else ""

    def last_day(self, end: _DateTime | None) -> str:
        """The last day a period ending (exclusively) at ``end`` covers, as a date."""
        if end is None:
            return ""
        return self.date(self.local(end) - timedelta(microseconds=1))

    def time(self, value: _DateTime | None) -> str:
        if value is None:
            return ""
        return format_time(self.local(value), "short", locale=self.locale)

    def datetime(self, value: _DateTime | None) -> str:
        """Medium date and short time ("2 Mar 2025 14:30")."""
        if value is None:
            return ""
        local = self.local(value)
        return f"{format_date(local.date(), 'medium', locale=self.locale)} {self.time(local)}"

    def full(self, value: _DateTime | None) -> str:
        """Full date and short time ("Sunday, 2 March 2025, 14:30"): appointments."""
        if value is None:
            return ""
        local = self.local(value)
        return f"{format_date(local, 'full', locale=self.locale)}, {self.time(local)}"

    def stamp(self, value: _DateTime | None) -> str:
        """Medium date, short time ("2 Mar 2025, 14:30"): when a message was sent."""
        if value is None:
            return ""
        local = self.local(value)
        return f"{format_date(local, 'medium', locale=self.locale)}, {self.time(local)}"

    def short(self, value: _DateTime | None) -> str:
        """Short date and time ("02/03/2025, 14:30"): chat lines."""
        if value is None:
            return ""
        return format_datetime(self.local(value), "short", locale=self.locale)

    def iso(self, value: str | _Date | _DateTime | None) -> str:
        """A machine-readable value for <time datetime="..."> (as given)."""
        if value is None:
            return ""
        if isinstance(value, datetime | date):
            return value.isoformat()
        return str(value)

    def local_iso(self, value: _DateTime | None) -> str:
        """A machine-readable value for <time datetime="...">, in the patient's zone."""
        return self.local(value).isoformat() if value else ""

    def km(self, value: float) -> str:
        """A distance in kilometres, one decimal at most ("2.5")."""
        return str(format_decimal(value, format="#,##0.#", locale=self.locale))


def formatter(request: web.Request) -> Formatter:
    return Formatter(locale(request), tz(request))


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
    """``fmt`` (dates, times, distances) and ``label`` (status codes) for templates."""

    def label(code: str | None) -> str:
        if not code:
            return ""
        known = LABELS.get(code)
        return translate(request, known) if known else code

    return {"fmt": formatter(request), "label": label}
