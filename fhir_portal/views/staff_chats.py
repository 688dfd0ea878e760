"""The staff side of the chat: the escalation queue, taking a chat, answering, closing.

Agents see patient-service escalations, clinicians see clinicians' ones (a user with both
roles sees both). Pages work without JavaScript (forms + redirects); with it, the queue
updates live over ``/staff/chats/ws`` and an open chat over ``/staff/chats/{id}/ws``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from fhir_portal import keys
from fhir_portal.auth.roles import Principal, Role
from fhir_portal.chat.hub import HUB, Side, conversation_room
from fhir_portal.fhir import FhirError, FhirGateway, FhirNotFound
from fhir_portal.i18n import N_
from fhir_portal.resources import chat, knowledge
from fhir_portal.views.chat import STATUS_TEXT
from fhir_portal.web.context import directory, locale, principal, staff_gateway
from fhir_portal.web.format import formatter
from fhir_portal.web.origin import check_websocket_origin
from fhir_portal.web.render import render, translate
from fhir_portal.web.sockets import open_socket, send, session_alive, while_signed_in

log = logging.getLogger(__name__)

HANDLERS = (Role.AGENT, Role.CLINICIAN)
VIEWERS = (Role.AGENT, Role.CLINICIAN, Role.ADMIN)
MAX_QUERY = 200

JOINED = N_("%(name)s has joined the chat.")
LEFT = N_("%(name)s has left the chat. The chat is closed.")
ARTICLE_TEXT = N_("Here is an article that may help you:")
TARGET_LABELS = {"patient-service": N_("Patient service"), "clinician": N_("Clinician")}
STATUS_LABELS = {
    "requested": N_("Waiting"),
    "accepted": N_("Accepted"),
    "in-progress": N_("In progress"),
    "completed": N_("Closed"),
    "cancelled": N_("Ended by the patient"),
}


def _staff(request: web.Request) -> tuple[FhirGateway, Principal]:
    gateway = staff_gateway(request, *VIEWERS)
    who = principal(request)
    assert who is not None  # staff_gateway signed them in
    return gateway, who


def _in_language(request: web.Request, language: str, message: str) -> str:
    """A message in the patient's language (the conversation's), not the agent's."""
    return request.app[keys.TRANSLATIONS].get(language).gettext(message)


def _task_id(request: web.Request) -> str:
    return request.match_info["task_id"]


def _common(request: web.Request, **values: Any) -> dict[str, Any]:
    return {
        "fmt": formatter(request),
        "target_labels": TARGET_LABELS,
        "status_labels": STATUS_LABELS,
        **values,
    }


# -- the queue -------------------------------------------------------------------------------------
async def queue_page(request: web.Request, *, error: str | None = None,
                     status: int = 200) -> web.Response:
    gateway, who = _staff(request)
    items = await chat.queue(gateway, who)
    return render(request, "staff_chats/queue.html", _common(
        request, items=items, error=error, handles=who.has(*HANDLERS),
        is_clinician=who.has(Role.CLINICIAN), is_agent=who.has(Role.AGENT)), status=status)


async def queue(request: web.Request) -> web.Response:
    return await queue_page(request)


async def accept(request: web.Request) -> web.Response:
    gateway, who = _staff(request)
    task_id = _task_id(request)
    try:
        language = (await chat.staff_chat(gateway, who, task_id)).conversation.language
    except FhirNotFound:  # taken by someone else meanwhile (accept says so), or no such chat
        language = locale(request)
    joined = _in_language(request, language, JOINED) % {"name": who.display_name}
    try:
        accepted = await chat.accept(gateway, who, task_id, joined_text=joined)
    except chat.ChatTaken:
        return await queue_page(
            request, status=409,
            error=translate(request, "Someone else has already taken this chat."))
    await _announce(request, accepted)
    raise web.HTTPSeeOther(f"/staff/chats/{task_id}")


async def _announce(request: web.Request, current: chat.StaffChat) -> None:
    """Tell everyone in the conversation the latest messages and status, and the queue."""
    hub = request.app[HUB]
    conversation = current.conversation
    for message in current.messages[-1:]:
        await hub.publish(conversation.patient_id, conversation.header_id,
                          {"type": "message", "message": message.as_json()})
    state = chat.ChatState(conversation, current.messages, current.task)
    text = _in_language(request, conversation.language, _status_msgid(state))
    if state.status == "person":
        text = text % {"name": state.agent_name or ""}
    await hub.publish(conversation.patient_id, conversation.header_id,
                      {"type": "status", "status": state.status, "text": text})
    await hub.queue_changed()


def _status_msgid(state: chat.ChatState) -> str:
    return STATUS_TEXT[state.status]


# -- one chat ----------------------------------------------------------------------------------------
async def chat_page(request: web.Request, *, error: str | None = None, text: str = "",
                    status: int = 200) -> web.Response:
    gateway, who = _staff(request)
    current = await chat.staff_chat(gateway, who, _task_id(request))
    details = await chat.StaffPatientView(gateway, current.conversation.patient_id).details()
    query = request.query.get("q", "").strip()[:MAX_QUERY]
    results: list[knowledge.ArticleLink] | None = None
    if query:
        lib = await knowledge.library(request.app, directory(request))
        results = lib.search(query, locale(request), limit=8)
    return render(request, "staff_chats/chat.html", _common(
        request, chat=current, patient=details, query=query, results=results, error=error,
        text=text, message_id=chat.valid_message_id(None),
        birth=formatter(request).long_date(details.birth_date) or None), status=status)


async def chat_view(request: web.Request) -> web.Response:
    return await chat_page(request)


async def post_message(request: web.Request) -> web.Response:
    gateway, who = _staff(request)
    form = await request.post()
    text = chat.clean_text(str(form.get("text", "")))
    if not text:
        return await chat_page(request, status=400,
                               error=translate(request, "Write a message before you send it."))
    message_id = chat.valid_message_id(str(form.get("message_id", "")))
    await _say(request, gateway, who, message_id, text)
    raise web.HTTPSeeOther(f"/staff/chats/{_task_id(request)}#chat-latest")


async def send_article(request: web.Request) -> web.Response:
    gateway, who = _staff(request)
    form = await request.post()
    article_id = str(form.get("article_id", ""))
    lib = await knowledge.library(request.app, directory(request))
    article = lib.get(article_id)
    if article is None:
        return await chat_page(request, status=400,
                               error=translate(request, "That article could not be found."))
    message_id = chat.valid_message_id(str(form.get("message_id", "")))
    await _say(request, gateway, who, message_id, "", article=article)
    raise web.HTTPSeeOther(f"/staff/chats/{_task_id(request)}#chat-latest")


async def _say(request: web.Request, gateway: FhirGateway, who: Principal, message_id: str,
               text: str, *, article: knowledge.Article | None = None) -> chat.ChatMessage:
    task_id = _task_id(request)
    try:
        current = await chat.staff_chat(gateway, who, task_id)
        article_text = _in_language(request, current.conversation.language, ARTICLE_TEXT)
        current, message, duplicate = await chat.staff_says(
            gateway, who, task_id, message_id, text, article=article, article_text=article_text)
    except chat.NotYours as exc:
        raise web.HTTPConflict(reason="take the chat before you write in it") from exc
    if not duplicate:
        await request.app[HUB].publish(current.conversation.patient_id, current.conversation.header_id,
                                       {"type": "message", "message": message.as_json()})
    return message


async def close(request: web.Request) -> web.Response:
    gateway, who = _staff(request)
    task_id = _task_id(request)
    current = await chat.staff_chat(gateway, who, task_id)
    left = _in_language(request, current.conversation.language, LEFT) % {"name": who.display_name}
    try:
        closed = await chat.close(gateway, who, task_id, left_text=left)
    except (chat.NotYours, chat.ChatTaken) as exc:
        raise web.HTTPConflict(reason="this chat is not yours to close") from exc
    await _announce(request, closed)
    raise web.HTTPSeeOther("/staff/chats")


# -- WebSockets --------------------------------------------------------------------------------------
async def queue_socket(request: web.Request) -> web.StreamResponse:
    check_websocket_origin(request)
    _staff(request)
    ws = await open_socket(request, max_msg_size=4096)
    if ws.closed:
        return ws
    hub = request.app[HUB]
    hub.listen_queue(ws)
    try:
        async with while_signed_in(request, ws):
            await send(ws, {"type": "ready"})
            async for _ in ws:
                pass
    finally:
        hub.unlisten_queue(ws)
    return ws


async def chat_socket(request: web.Request) -> web.StreamResponse:
    check_websocket_origin(request)
    gateway, who = _staff(request)
    task_id = _task_id(request)
    current = await chat.staff_chat(gateway, who, task_id)  # not found unless theirs to handle
    ws = await open_socket(request, max_msg_size=16 * 1024)
    if ws.closed:
        return ws
    hub = request.app[HUB]
    room = conversation_room(current.conversation.header_id)
    hub.join(room, ws, Side.STAFF)
    try:
        async with while_signed_in(request, ws):
            await send(ws, _history(request, current))
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                if not await session_alive(request):
                    await ws.close(code=4401, message=b"signed out")
                    break
                try:
                    data = json.loads(frame.data)
                except ValueError:
                    continue
                if not isinstance(data, dict) or data.get("type") != "message":
                    continue
                message_id = chat.valid_message_id(data.get("id"))
                text = chat.clean_text(str(data.get("text", "")))
                if not text:
                    continue
                try:
                    message = await _say(request, gateway, who, message_id, text)
                except web.HTTPConflict:
                    await send(ws, {"type": "error", "id": message_id, "retry": False,
                                    "text": translate(request, "Take the chat before you write in it.")})
                    continue
                except FhirError:
                    await send(ws, {"type": "error", "id": message_id, "retry": True,
                                    "text": translate(request, "The message could not be sent yet. It "
                                                      "will be sent again automatically.")})
                    continue
                await send(ws, {"type": "ack", "id": message_id, "message": message.as_json()})
    finally:
        hub.leave(room, ws)
    return ws


def _history(request: web.Request, current: chat.StaffChat) -> dict[str, Any]:
    state = chat.ChatState(current.conversation, current.messages, current.task)
    return {
        "type": "history",
        "messages": [m.as_json() for m in current.messages],
        "status": state.status,
        "text": translate(request, STATUS_LABELS.get(current.task.status, current.task.status)),
    }
