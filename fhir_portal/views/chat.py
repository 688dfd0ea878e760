"""The patient's chat: ``/chat`` (works without JavaScript) and the ``/chat/ws`` WebSocket.

The conversation id lives in the server-side session; every message is stored in FHIR
before it is acknowledged or shown to anyone, and the client's message id makes a resent
message a no-op. Without JavaScript each message is a form POST followed by a redirect.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from fhir_portal import keys
from fhir_portal.chat.hub import HUB, Side, patient_room
from fhir_portal.fhir import FhirError
from fhir_portal.i18n import N_
from fhir_portal.resources import chat, knowledge
from fhir_portal.web.context import locale, patient_scope, principal, session
from fhir_portal.web.format import formatter
from fhir_portal.web.origin import check_websocket_origin
from fhir_portal.web.render import render, translate
from fhir_portal.web.session import COOKIE as SESSION_COOKIE
from fhir_portal.web.sockets import open_socket, send, session_alive, while_signed_in

log = logging.getLogger(__name__)

SESSION_KEY = "chat"
MAX_FRAME = 16 * 1024
CONVERSATION_TITLE = "Chat with the Health Bot"

STATUS_TEXT = {
    "bot": N_("You are chatting with the Health Bot."),
    "waiting": N_("Waiting for a person to join the chat…"),
    "person": N_("%(name)s from Contoso Healthcare is in the chat."),
    "closed": N_("This chat has ended."),
}


def status_text(request: web.Request, state: chat.ChatState) -> str:
    text = translate(request, STATUS_TEXT[state.status])
    return text % {"name": state.agent_name or ""} if state.status == "person" else text


def bot_gettext(request: web.Request) -> Any:
    catalogues = request.app[keys.TRANSLATIONS]
    return lambda language, message: catalogues.get(language).gettext(message)


def _pointer(request: web.Request) -> dict[str, Any] | None:
    current = session(request)
    value = current.data.get(SESSION_KEY) if current is not None else None
    return value if isinstance(value, dict) else None


async def _remember(request: web.Request, pointer: dict[str, str] | None) -> None:
    """Keep (or forget) the conversation in the session, changing nothing else in it."""
    mine = session(request)
    if mine is None:
        return
    store = request.app[keys.ACCOUNTS]
    token = request.cookies.get(SESSION_COOKIE)
    stored = await store.session(token) if token else None
    await store.set_session_value(stored or mine, SESSION_KEY, pointer)  # None removes it
    if stored is not None and stored is not mine:  # this request's copy follows
        if pointer is None:
            mine.data.pop(SESSION_KEY, None)
        else:
            mine.data[SESSION_KEY] = pointer


def _status_payload(request: web.Request, state: chat.ChatState) -> dict[str, Any]:
    return {"type": "status", "status": state.status, "text": status_text(request, state)}


class Conversation:
    """One patient's chat for the length of a request or socket."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.scope = patient_scope(request)
        self.who = principal(request)

    async def state(self) -> chat.ChatState:
        return await chat.patient_state(self.scope, _pointer(self.request))

    async def say(self, message_id: str, text: str,
                  on_stored: Any = None) -> tuple[chat.Turn, chat.ChatState]:
        """Store the message (calling ``on_stored`` before the bot answers), then the bot's turn."""
        request = self.request
        state = await self.state()
        conversation = state.conversation
        if conversation is None or not conversation.open:
            conversation = await chat.start_conversation(
                self.scope, locale(request), title=CONVERSATION_TITLE)
            await _remember(request, conversation.pointer)
        name = self.who.display_name if self.who else ""
        message, duplicate = await chat.record_patient_message(
            self.scope, conversation, message_id, text, sender_name=name)
        if on_stored is not None:
            await on_stored(message, duplicate)
        hub = request.app[HUB]
        if duplicate:
            return chat.Turn(message, True), await self.state()
        await hub.publish(self.scope.patient_id, conversation.header_id,
                          {"type": "message", "message": message.as_json()})
        lib = await knowledge.library(request.app, self.scope.directory)
        turn = await chat.bot_turn(
            self.scope, conversation, message, page_language=locale(request),
            gettext=bot_gettext(request), library=lib,
            facts=await request.app.get(chat.FACTS, chat.FactsCache()).facts(self.scope, lib),
        )
        for reply in turn.replies:
            await hub.publish(self.scope.patient_id, conversation.header_id,
                              {"type": "message", "message": reply.as_json()})
        after = await self.state()
        if turn.escalated is not None:
            await hub.publish(self.scope.patient_id, conversation.header_id,
                              _status_payload(request, after))
            await hub.queue_changed()
        return turn, after


# -- pages ----------------------------------------------------------------------------------------
async def page(request: web.Request, *, error: str | None = None, text: str = "",
               status: int = 200) -> web.Response:
    state = await Conversation(request).state()
    return render(request, "chat/page.html", {
        "state": state,
        "status_text": status_text(request, state),
        "message_id": chat.valid_message_id(None),
        "error": error,
        "text": text,
        "fmt": formatter(request),
    }, status=status)


async def chat_page(request: web.Request) -> web.Response:
    return await page(request)


async def post_message(request: web.Request) -> web.Response:
    form = await request.post()
    text = chat.clean_text(str(form.get("text", "")))
    if not text:
        return await page(request, error=translate(request, "Write a message before you send it."),
                          status=400)
    message_id = chat.valid_message_id(str(form.get("message_id", "")))
    await Conversation(request).say(message_id, text)
    raise web.HTTPSeeOther("/chat#chat-latest")


async def new_chat(request: web.Request) -> web.Response:
    """End the current conversation and start afresh with the bot."""
    conversation = Conversation(request)
    state = await conversation.state()
    if state.conversation is not None and state.conversation.open:
        await chat.end_conversation_by_patient(conversation.scope, state.conversation)
        await request.app[HUB].queue_changed()
    await _remember(request, None)
    raise web.HTTPSeeOther("/chat")


# -- the WebSocket ----------------------------------------------------------------------------------
def history_payload(request: web.Request, state: chat.ChatState) -> dict[str, Any]:
    return {
        "type": "history",
        "messages": [m.as_json() | {"when": formatter(request).short(m.sent)} for m in state.messages],
        "status": state.status,
        "text": status_text(request, state),
    }


async def patient_socket(request: web.Request) -> web.StreamResponse:
    check_websocket_origin(request)
    who = principal(request)
    if who is None or not who.is_patient:
        raise web.HTTPForbidden()
    asked = request.query.get("conversation")
    pointer = _pointer(request) or {}
    if asked and asked != pointer.get("conversation"):
        raise web.HTTPForbidden(reason="not your conversation")
    conversation = Conversation(request)
    ws = await open_socket(request, max_msg_size=MAX_FRAME)
    if ws.closed:
        return ws
    hub = request.app[HUB]
    room = patient_room(conversation.scope.patient_id)
    hub.join(room, ws, Side.PATIENT)
    try:
        async with while_signed_in(request, ws):
            await send(ws, history_payload(request, await conversation.state()))
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                if not await session_alive(request):
                    await ws.close(code=4401, message=b"signed out")
                    break
                await _handle(request, ws, conversation, frame.data)
    finally:
        hub.leave(room, ws)
    return ws


async def _handle(request: web.Request, ws: web.WebSocketResponse, conversation: Conversation,
                  raw: str) -> None:
    try:
        data = json.loads(raw)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    kind = data.get("type")
    if kind == "hello":
        return
    if kind == "history":
        await send(ws, history_payload(request, await conversation.state()))
        return
    if kind != "message":
        return
    message_id = chat.valid_message_id(data.get("id"))
    text = chat.clean_text(str(data.get("text", "")))
    if not text:
        await send(ws, {"type": "error", "id": message_id, "retry": False,
                        "text": translate(request, "Write a message before you send it.")})
        return

    async def acknowledge(message: chat.ChatMessage, duplicate: bool) -> None:
        await send(ws, {"type": "ack", "id": message_id,
                        "message": message.as_json() | {"when": formatter(request).short(message.sent)}})

    try:
        _, state = await conversation.say(message_id, text, on_stored=acknowledge)
    except FhirError as exc:
        log.warning("chat message %s not handled: %s", message_id, type(exc).__name__)
        await send(ws, {"type": "error", "id": message_id, "retry": True,
                        "text": translate(request, "The message could not be sent yet. It "
                                          "will be sent again automatically.")})
        return
    await send(ws, _status_payload(request, state))
