"""Background helpers: a periodic loop survives failing rounds and stops when cancelled;
shutdown cancels work that outlives its grace period; keyed locks serialise one key."""

from __future__ import annotations

import asyncio

from aiohttp import web

from fhir_portal.fhir.errors import FhirUnavailable
from fhir_portal.web.background import TASKS, KeyedLocks, drain, periodic, spawn, stop


async def test_periodic_goes_on_after_failures_wakes_early_and_stops() -> None:
    rounds: list[int] = []
    wake = asyncio.Event()

    async def one_round() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise FhirUnavailable("down")
        if len(rounds) == 2:
            raise ValueError("a bug")

    task = asyncio.create_task(periodic("test loop", one_round, every=0.01))
    await asyncio.sleep(0.1)
    await stop(task)
    assert len(rounds) >= 3 and task.cancelled()

    woken: list[int] = []

    async def count() -> None:
        woken.append(1)

    slow = asyncio.create_task(periodic("slow loop", count, every=60, wake=wake))
    await asyncio.sleep(0.01)
    wake.set()
    await asyncio.sleep(0.01)
    await stop(slow)
    assert len(woken) == 2  # the first round, then one more on wake (not after 60 s)


async def test_drain_cancels_what_outlives_the_grace_period() -> None:
    app = web.Application()
    app[TASKS] = set()
    quick = spawn(app, asyncio.sleep(0), what="quick")
    stuck = spawn(app, asyncio.sleep(3600), what="stuck")
    await drain(app, 0.05, cancel=True)
    assert quick.done() and not quick.cancelled()
    assert stuck.cancelled()


async def test_keyed_locks_serialise_one_key_only() -> None:
    locks = KeyedLocks()
    assert locks("a") is locks("a")
    async with locks("a"):
        assert locks("a").locked() and not locks("b").locked()
