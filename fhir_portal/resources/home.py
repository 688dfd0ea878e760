"""The home page: one portal action that gathers today's activities, the next
appointments and the latest messages, with every FHIR query running in parallel."""

from __future__ import annotations

import asyncio
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


async def overview(scope: PatientScope, tz: tzinfo, *, now: datetime | None = None) -> HomeView:
    """Everything the home page shows; the five reads run concurrently."""
    now = now or datetime.now(UTC)
    patient, todays, upcoming, unread, latest = await asyncio.gather(
        patients.summary(scope),
        activities.today(scope, tz, now=now),
        appointments.upcoming(scope, limit=3),
        messages.unread_count(scope),
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
