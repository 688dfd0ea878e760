"""The home page: one portal action that gathers today's activities, the next
appointments and the latest messages, with every FHIR query running in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from fhir_portal.fhir import PatientScope
from fhir_portal.resources import activities, appointments, messages, patients


@dataclass(frozen=True)
class HomeView:
    patient: patients.PatientSummary
    today: list[activities.Activity]
    overdue: int
    appointments: list[appointments.AppointmentItem]
    unread: int
    messages: list[messages.MessageItem]


async def overview(
    scope: PatientScope,
    tz: tzinfo,
    *,
    now: datetime | None = None,
    known_unread: Callable[[], Awaitable[int | None]] | None = None,
) -> HomeView:
    """Everything the home page shows; the five reads run concurrently.

    ``known_unread`` gives the unread count when the page already fetches it (the
    navigation badge), so the same search is not sent twice; None means "not known".
    """
    now = now or datetime.now(UTC)

    async def unread_count() -> int:
        known = await known_unread() if known_unread is not None else None
        return known if known is not None else await messages.unread_count(scope)

    patient, todays, upcoming, unread, latest = await asyncio.gather(
        patients.summary(scope),
        activities.today(scope, tz, now=now),
        appointments.upcoming(scope, limit=3),
        unread_count(),
        messages.latest(scope, limit=3),
    )
    return HomeView(
        patient=patient,
        today=todays.today,
        overdue=todays.overdue,
        appointments=list(upcoming),
        unread=int(unread),
        messages=list(latest),
    )
