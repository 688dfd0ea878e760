"""The hub: rooms per patient and per conversation, sides, broadcast, the staff queue;
and the chat pages refuse who they should without reaching the FHIR server."""

from __future__ import annotations

import json

import aiohttp
import pytest

from fhir_portal.chat.hub import Hub, Side, conversation_room, patient_room


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed = False

    async def send_str(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, **_: object) -> None:
        self.closed = True


async def test_publish_reaches_the_patient_and_the_staff_of_that_conversation_only() -> None:
    hub = Hub()
    anna, bob, staff, other_staff, queue = (FakeSocket() for _ in range(5))
    hub.join(patient_room("anna"), anna, Side.PATIENT)  # type: ignore[arg-type]
    hub.join(patient_room("bob"), bob, Side.PATIENT)  # type: ignore[arg-type]
    hub.join(conversation_room("c-anna"), staff, Side.STAFF)  # type: ignore[arg-type]
    hub.join(conversation_room("c-bob"), other_staff, Side.STAFF)  # type: ignore[arg-type]
    hub.listen_queue(queue)  # type: ignore[arg-type]
    sent = await hub.publish("anna", "c-anna", {"type": "message", "text": "hi"})
    assert sent == 2
    assert anna.sent == [{"type": "message", "text": "hi"}] and staff.sent == anna.sent
    assert bob.sent == [] and other_staff.sent == [] and queue.sent == []
    assert await hub.queue_changed() == 1 and queue.sent == [{"type": "queue"}]
    assert await hub.broadcast(conversation_room("c-anna"), {"x": 1}, side=Side.PATIENT) == 0


async def test_closed_sockets_are_skipped_and_rooms_are_emptied() -> None:
    hub = Hub()
    gone = FakeSocket()
    gone.closed = True
    hub.join("r", gone, Side.PATIENT)  # type: ignore[arg-type]
    assert await hub.broadcast("r", {"a": 1}) == 0
    hub.leave("r", gone)  # type: ignore[arg-type]
    assert "r" not in hub.rooms
    live = FakeSocket()
    hub.join("r", live, Side.STAFF)  # type: ignore[arg-type]
    await hub.close_all()
    assert live.closed and not hub.rooms


async def test_chat_pages_need_a_signed_in_patient_or_staff(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/chat", "/knowledge", "/knowledge/kb-eczema", "/staff/chats"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login")


async def test_websocket_with_a_foreign_origin_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/chat/ws", "/staff/chats/ws"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(path, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
