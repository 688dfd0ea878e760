"""The home page: one portal action that gathers today's activities, the next
appointments and the latest messages, with every FHIR query running in parallel."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from fhir_portal.fhir import PatientScope
from fhir_portal.resources import activities, patients


@dataclass(frozen=True)
class HomeView:
    patient: patients.PatientSummary
    today: list[activities.Activity]
    overdue: int
    appointments: list[Any] | None  # None: the appointments area is not available
    unread: int | None  # None: the messages area is not available
    messages: list[Any] | None


async def _appointments(scope: PatientScope) -> list[Any] | None:
    try:
        from fhir_portal.resources import appointments
    except ImportError:
        return None
    return list(await appointments.upcoming(scope, limit=3))


async def _unread(scope: PatientScope) -> int | None:
    try:
        from fhir_portal.resources import messages
    except ImportError:
        return None
    return int(await messages.unread_count(scope))


async def _latest(scope: PatientScope) -> list[Any] | None:
    try:
        from fhir_portal.resources import messages
    except ImportError:
        return None
    return list(await messages.latest(scope, limit=3))


async def overview(scope: PatientScope, tz: tzinfo, *, now: datetime | None = None) -> HomeView:
    now = now or datetime.now(UTC)
    patient, todays, upcoming, unread, latest = await asyncio.gather(
        patients.summary(scope),
        activities.today(scope, tz, now=now),
        _appointments(scope),
        _unread(scope),
        _latest(scope),
    )
    return HomeView(
        patient=patient,
        today=todays.today,
        overdue=todays.overdue,
        appointments=upcoming,
        unread=unread,
        messages=latest,
    )
