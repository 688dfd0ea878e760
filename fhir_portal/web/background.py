"""Work that runs beside the requests: fire-and-forget tasks, periodic loops, keyed locks.

* ``spawn``: work after a response (audit events, account emails). Tasks are kept
  referenced on the app (so they are not garbage-collected mid-flight), their failures are
  logged, never raised into a request; at shutdown they get a grace period, then are
  cancelled.
* ``periodic``: the loop of a background worker (outbox, inbox watch, knowledge refresher):
  one round, then sleep (or until woken); a failed round is logged and the loop goes on;
  cancelling it stops it. ``stop`` cancels such a task and waits for it.
* ``KeyedLocks``: one ``asyncio.Lock`` per key (e.g. one message and patient), on the app
  under ``LOCKS``: no module-level state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from fhir_portal.fhir.errors import FhirError

log = logging.getLogger(__name__)

TASKS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("background_tasks", set)


class KeyedLocks:
    """One lock per key, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


LOCKS: web.AppKey[KeyedLocks] = web.AppKey("keyed_locks", KeyedLocks)


def keyed_locks(app: web.Application) -> KeyedLocks:
    """The app's keyed locks (set at start-up; a new set for an app that never started)."""
    found = app.get(LOCKS)
    return found if found is not None else KeyedLocks()


async def periodic(what: str, one_round: Callable[[], Awaitable[Any]], *, every: float,
                   wake: asyncio.Event | None = None) -> None:
    """Run ``one_round`` now and then every ``every`` seconds (sooner when ``wake`` is set),
    until cancelled. A failing round is logged (a FHIR error by its type only: no PHI in
    logs) and the next round comes as usual; cancellation is never swallowed."""
    while True:
        try:
            await one_round()
        except FhirError as exc:
            log.warning("%s failed: %s", what, type(exc).__name__)
        except Exception:  # a bug must not stop the loop for good
            log.exception("%s failed", what)
        if wake is None:
            await asyncio.sleep(every)
            continue
        wake.clear()
        # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that arrives as the wake-up does, and the loop would never stop
        waiter = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=every)
        finally:
            waiter.cancel()


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel a background task and wait until it has stopped (cancelling again should a
    round have swallowed the first cancellation)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


def spawn(app: web.Application, coro: Coroutine[Any, Any, Any], *, what: str) -> asyncio.Task[Any]:
    tasks = app.get(TASKS)
    if tasks is None:  # app not started through cleanup_ctx (should not happen)
        tasks = set()
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        tasks.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            exc = finished.exception()
            log.warning("background %s failed: %s: %s", what, type(exc).__name__, exc)

    task.add_done_callback(done)
    return task


async def drain(app: web.Application, seconds: float = 10.0, *, cancel: bool = False) -> None:
    """Wait for the background work (tests, shutdown), including work it starts meanwhile
    (e.g. a retry), up to ``seconds``; with ``cancel``, what is still running then is
    cancelled (and waited for), so nothing outlives the connection pools it uses."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    unfinished: set[asyncio.Task[Any]] = set()
    while True:
        pending = {task for task in app.get(TASKS) or () if not task.done()}
        if not pending:
            return
        _, unfinished = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        if unfinished and loop.time() >= deadline:
            break
    if cancel and unfinished:
        log.warning("%d background task(s) unfinished at shutdown: cancelled", len(unfinished))
        for task in unfinished:
            task.cancel()
        await asyncio.wait(unfinished)


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    app[TASKS] = set()
    app[LOCKS] = KeyedLocks()
    yield
    await drain(app, cancel=True)
