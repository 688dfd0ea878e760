"""Fire-and-forget work after a response (audit events, account emails), awaited at shutdown.

Tasks are kept referenced on the app (so they are not garbage-collected mid-flight) and
their failures are logged, never raised into a request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

TASKS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("background_tasks", set)


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


async def drain(app: web.Application, seconds: float = 10.0) -> None:
    """Wait for the background work started so far (tests, shutdown)."""
    pending = list(app.get(TASKS) or ())
    if pending:
        await asyncio.wait(pending, timeout=seconds)


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    app[TASKS] = set()
    yield
    await drain(app)
