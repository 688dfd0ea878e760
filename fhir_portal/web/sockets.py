"""WebSocket plumbing the chat sockets share (patient chat, staff queue, staff chat).

A socket is opened only after its CSRF token is shown (in the query, or in a first
``hello`` message), and lives only as long as its session: signed out or expired closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from fhir_portal import keys
from fhir_portal.web.context import CSRF_TOKEN
from fhir_portal.web.session import COOKIE as SESSION_COOKIE

SESSION_CHECK_SECONDS = 60.0
SESSION_TOUCH_SECONDS = 60.0
HELLO_TIMEOUT = 10.0
HEARTBEAT_SECONDS = 25.0


def csrf_ok(request: web.Request, sent: object) -> bool:
    expected = request.get(CSRF_TOKEN, "")
    return isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent, expected)


async def authorise_socket(request: web.Request, ws: web.WebSocketResponse) -> bool:
    """CSRF token in the query, or in a first ``hello`` message within a few seconds."""
    if csrf_ok(request, request.query.get("csrf")):
        return True
    try:
        first = await ws.receive(timeout=HELLO_TIMEOUT)
    except TimeoutError:
        return False
    if first.type != WSMsgType.TEXT:
        return False
    try:
        data = json.loads(first.data)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") == "hello" and csrf_ok(request, data.get("csrf"))


async def session_alive(request: web.Request) -> bool:
    """A socket lives only as long as its session: signed out (or expired) closes it.

    While the user chats, the session counts as in use (the idle limit is not reached).
    """
    settings = request.app[keys.SETTINGS]
    store = request.app[keys.ACCOUNTS]
    token = request.cookies.get(SESSION_COOKIE)
    current = await store.session(token) if token else None
    if current is None:
        return False
    now = time.time()
    if (now - current.last_seen > settings.session_idle_minutes * 60
            or now - current.created_at > settings.session_absolute_hours * 3600):
        return False
    if now - current.last_seen > SESSION_TOUCH_SECONDS:
        await store.touch_session(current)
    return True


async def watch_session(request: web.Request, ws: web.WebSocketResponse) -> None:
    """Close the socket once the session ends (checked every minute)."""
    while not ws.closed:
        await asyncio.sleep(SESSION_CHECK_SECONDS)
        if not await session_alive(request):
            await ws.close(code=4401, message=b"signed out")
            return


async def send(ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
    if not ws.closed:
        await ws.send_str(json.dumps(payload))


async def open_socket(request: web.Request, *, max_msg_size: int) -> web.WebSocketResponse:
    """The prepared socket; closed (4403) already when the CSRF token was not shown."""
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=max_msg_size)
    await ws.prepare(request)
    if not await authorise_socket(request, ws):
        await ws.close(code=4403, message=b"csrf")
    return ws


@contextlib.asynccontextmanager
async def while_signed_in(request: web.Request, ws: web.WebSocketResponse) -> AsyncIterator[None]:
    """The body runs while the session lives (checked every minute); a socket that went away
    ends it quietly, a cancellation (shutdown) goes on up."""
    watcher = asyncio.create_task(watch_session(request, ws))
    try:
        yield
    except ConnectionError:
        pass
    finally:
        watcher.cancel()
