"""How fast the instant-visit queue moves: only gaps while someone was waiting count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fhir_portal.fhir import PatientScope
from fhir_portal.fhir.errors import FhirForbidden
from fhir_portal.resources.queue import service_minutes

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def visit(joined: int, taken: int) -> dict:
    """An instant visit that joined and was taken ``joined``/``taken`` minutes after T0."""
    return {"resourceType": "Appointment",
            "created": (T0 + timedelta(minutes=joined)).isoformat(),
            "start": (T0 + timedelta(minutes=taken)).isoformat()}


def test_busy_gaps_give_the_minutes_per_patient() -> None:
    # four patients queued at 9:00, taken every 6 minutes
    assert service_minutes([visit(0, 0), visit(0, 6), visit(0, 12), visit(0, 18)]) == 6


def test_quiet_spells_do_not_count() -> None:
    # taken at once on arrival, hours apart: nobody waited, so no gap says anything
    quiet = [visit(0, 0), visit(60, 60), visit(120, 120), visit(180, 180)]
    assert service_minutes(quiet) is None
    # mixed: the busy gaps (4, 4, 8) count, the quiet hour does not
    mixed = [visit(0, 0), visit(0, 4), visit(1, 8), visit(2, 16), visit(90, 90)]
    assert service_minutes(mixed) == 4


def test_too_few_samples_and_clamping() -> None:
    assert service_minutes([visit(0, 0), visit(0, 5)]) is None
    assert service_minutes([]) is None
    assert service_minutes([{"resourceType": "Appointment"}] * 5) is None
    slow = [visit(0, 0), visit(0, 100), visit(0, 200), visit(0, 300)]
    assert service_minutes(slow) == 60  # clamped


class CountingGateway:
    def __init__(self) -> None:
        self.queries: list[dict] = []

    async def search_all(self, resource_type, params, **kwargs):  # type: ignore[no-untyped-def]
        from fhir_portal.fhir.gateway import SearchPage

        self.queries.append({"type": resource_type, **params})
        return SearchPage([visit(0, 0), visit(0, 6), visit(0, 12), visit(0, 18)], {}, None)


async def test_a_statistic_returns_only_a_number_and_only_for_shared_services() -> None:
    gateway = CountingGateway()
    scope = PatientScope(gateway, "pat-1")  # type: ignore[arg-type]
    value = await scope.statistic("Appointment", {"status": "arrived"}, ("start", "created"),
                                  service_minutes)
    assert value == 6
    [query] = gateway.queries
    assert query["_elements"] == "start,created" and "patient" not in query
    with pytest.raises(FhirForbidden):
        await scope.statistic("Condition", {}, ("code",), len)  # type: ignore[arg-type]


async def test_the_queue_speed_is_asked_once_a_minute_however_many_wait() -> None:
    import asyncio

    from fhir_portal.resources.queue import QueueSpeed

    gateway = CountingGateway()
    scope = PatientScope(gateway, "pat-1")  # type: ignore[arg-type]
    speed = QueueSpeed(ttl=60)
    assert await asyncio.gather(*(speed.minutes(scope) for _ in range(5))) == [6] * 5
    assert await speed.minutes(scope) == 6 and len(gateway.queries) == 1
    speed.ttl = 0
    await speed.minutes(scope)
    assert len(gateway.queries) == 2
