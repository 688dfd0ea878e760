"""The in-process WebSocket hub: which sockets follow which conversation, and the staff queue.

A *room* is one conversation (keyed by the id of its first Communication); patients and
staff sockets join it as different sides. Staff queue pages listen for "queue changed".
One portal process holds the hub; a message is always persisted in FHIR before it is sent
here, so a socket that misses a broadcast gets it with the history on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class Side(StrEnum):
    PATIENT = "patient"
    STAFF = "staff"


@dataclass
class Hub:
    rooms: dict[str, dict[web.WebSocketResponse, Side]] = field(default_factory=dict)
    queue_listeners: set[web.WebSocketResponse] = field(default_factory=set)

    # -- membership ------------------------------------------------------------------
    def join(self, room: str, socket: web.WebSocketResponse, side: Side) -> None:
        self.rooms.setdefault(room, {})[socket] = side

    def leave(self, room: str, socket: web.WebSocketResponse) -> None:
        members = self.rooms.get(room)
        if members is None:
            return
        members.pop(socket, None)
        if not members:
            del self.rooms[room]

    def listen_queue(self, socket: web.WebSocketResponse) -> None:
        self.queue_listeners.add(socket)

    def unlisten_queue(self, socket: web.WebSocketResponse) -> None:
        self.queue_listeners.discard(socket)

    def members(self, room: str, side: Side | None = None) -> list[web.WebSocketResponse]:
        return [s for s, who in self.rooms.get(room, {}).items() if side is None or who == side]

    # -- sending -----------------------------------------------------------------------
    async def broadcast(self, room: str, payload: dict[str, Any], *,
                        side: Side | None = None) -> int:
        """Send to every open socket in a room (optionally one side); returns how many got it."""
        return await _send_all(self.members(room, side), payload)

    async def publish(self, patient_id: str, header_id: str, payload: dict[str, Any]) -> int:
        """To the patient's sockets and to staff following the conversation."""
        sent = await self.broadcast(patient_room(patient_id), payload)
        return sent + await self.broadcast(conversation_room(header_id), payload)

    async def queue_changed(self) -> int:
        return await _send_all(list(self.queue_listeners), {"type": "queue"})

    async def close_all(self) -> None:
        sockets = {s for room in self.rooms.values() for s in room} | self.queue_listeners
        for socket in sockets:
            with contextlib.suppress(Exception):
                await socket.close(code=1001, message=b"server shutdown")
        self.rooms.clear()
        self.queue_listeners.clear()


async def _send_all(sockets: list[web.WebSocketResponse], payload: dict[str, Any]) -> int:
    text = json.dumps(payload)
    sent = 0
    for socket in sockets:
        if socket.closed:
            continue
        try:
            await socket.send_str(text)
            sent += 1
        except (ConnectionError, RuntimeError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.debug("chat socket dropped while sending")
    return sent


def patient_room(patient_id: str) -> str:
    return f"patient:{patient_id}"


def conversation_room(header_id: str) -> str:
    return f"conversation:{header_id}"


HUB: web.AppKey[Hub] = web.AppKey("chat_hub", Hub)


async def hub_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: a hub on the app; sockets closed (going away) on shutdown."""
    app[HUB] = hub = Hub()
    yield
    await hub.close_all()
