"""The home page gathers its parts concurrently, not one after another (no servers)."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import pytest

from fhir_portal.resources import activities, appointments, home, messages, patients

DELAY = 0.2


@pytest.fixture
def slow_parts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    state = {"running": 0, "peak": 0}

    async def slow(result):  # type: ignore[no-untyped-def]
        state["running"] += 1
        state["peak"] = max(state["peak"], state["running"])
        await asyncio.sleep(DELAY)
        state["running"] -= 1
        return result

    summary = patients.PatientSummary("p", "Pia Test", "Pia", None, None, None, None)
    monkeypatch.setattr(patients, "summary", lambda scope: slow(summary))
    monkeypatch.setattr(
        activities, "today", lambda scope, tz, now=None: slow(activities.TodaysActivities([], 2))
    )
    monkeypatch.setattr(appointments, "upcoming", lambda scope, limit=3: slow([]))
    monkeypatch.setattr(messages, "unread_count", lambda scope: slow(4))
    monkeypatch.setattr(messages, "latest", lambda scope, limit=3: slow([]))
    return state


async def test_home_parts_run_in_parallel(slow_parts: dict[str, int]) -> None:
    view = await home.overview(object(), ZoneInfo("Europe/Copenhagen"))  # type: ignore[arg-type]
    assert slow_parts["peak"] == 5  # all five parts were in flight at once
    assert (view.patient.given_name, view.overdue, view.unread, view.appointments) == ("Pia", 2, 4, [])


async def test_a_known_unread_count_is_not_searched_again(
    slow_parts: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    searched = []

    async def counted(scope):  # type: ignore[no-untyped-def]
        searched.append(scope)
        return 4

    monkeypatch.setattr(messages, "unread_count", counted)

    async def from_the_badge() -> int | None:
        return 9

    view = await home.overview(
        object(), ZoneInfo("Europe/Copenhagen"), known_unread=from_the_badge  # type: ignore[arg-type]
    )
    assert view.unread == 9 and searched == []

    async def unknown() -> int | None:  # e.g. the badge's own search failed
        return None

    view = await home.overview(
        object(), ZoneInfo("Europe/Copenhagen"), known_unread=unknown  # type: ignore[arg-type]
    )
    assert view.unread == 4 and len(searched) == 1
