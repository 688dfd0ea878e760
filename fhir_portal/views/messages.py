"""Secure messages: inbox, sent, a conversation, writing and answering (patient side)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fhir_portal.auth.roles import Role
from fhir_portal.resources import messages
from fhir_portal.web.background import keyed_locks
from fhir_portal.web.context import page_number, patient_scope, principal, signed_in
from fhir_portal.web.format import formatter
from fhir_portal.web.message_forms import file_response, form_error, form_key, limits, read_upload
from fhir_portal.web.render import (
    NavBadge,
    current_badges,
    refresh_nav_badges,
    render,
)


def _context(request: web.Request, **values: Any) -> dict[str, Any]:
    return {"fmt": formatter(request), **values}


async def inbox(request: web.Request) -> web.Response:
    who = signed_in(request)
    if not who.is_patient and who.has(Role.CLINICIAN):
        raise web.HTTPSeeOther("/staff/messages")  # the main navigation's entry, for staff
    scope = patient_scope(request)
    listing = await messages.inbox(scope, page=page_number(request, cap=1000))
    badge = (await current_badges(request)).get("/messages")
    unread = badge.count if badge is not None else await messages.unread_count(scope)
    return render(
        request,
        "messages/list.html",
        _context(request, box="inbox", listing=listing, unread=unread),
    )


async def sent(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    listing = await messages.sent(scope, page=page_number(request, cap=1000))
    return render(
        request, "messages/list.html", _context(request, box="sent", listing=listing, unread=0)
    )


async def compose(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    choices = await messages.recipients(scope)
    values = {"to": request.query.get("to", ""), "subject": "", "body": ""}
    return render(
        request,
        "messages/new.html",
        _context(
            request,
            choices=choices,
            values=values,
            errors={},
            key=messages.new_message_key(),
            limits=limits(),
        ),
    )


async def send(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    form = await request.post()
    values = {name: str(form.get(name) or "") for name in ("to", "subject", "body")}
    try:
        filename, data = await read_upload(form)
        upload = messages.check_attachment(filename, data)
        thread_id = await messages.send(
            scope,
            to=values["to"],
            subject=values["subject"],
            body=values["body"],
            key=str(form.get("key") or ""),
            locks=keyed_locks(request.app),
            attachment=upload,
        )
    except messages.MessageError as error:
        choices = await messages.recipients(scope)
        return render(
            request,
            "messages/new.html",
            _context(
                request,
                choices=choices,
                values=values,
                errors=form_error(request, error),
                key=form_key(form),
                limits=limits(),
            ),
            status=422,
        )
    raise web.HTTPSeeOther(f"/messages/{thread_id}?sent=1#latest")


async def thread(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    message_id = request.match_info["id"]
    conversation = await messages.open_thread(scope, message_id)  # and marks it read
    await refresh_nav_badges(request)
    return render(
        request,
        "messages/thread.html",
        _context(
            request,
            thread=conversation,
            errors={},
            values={"body": ""},
            key=messages.new_message_key(),
            limits=limits(),
            just_sent=request.query.get("sent") == "1",
        ),
    )


async def reply(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    message_id = request.match_info["id"]
    form = await request.post()
    body = str(form.get("body") or "")
    try:
        filename, data = await read_upload(form)
        upload = messages.check_attachment(filename, data)
        thread_id = await messages.reply(
            scope, message_id, body=body, key=str(form.get("key") or ""),
            locks=keyed_locks(request.app), attachment=upload,
        )
    except messages.MessageError as error:
        conversation = await messages.thread(scope, message_id)
        return render(
            request,
            "messages/thread.html",
            _context(
                request,
                thread=conversation,
                errors=form_error(request, error),
                values={"body": body},
                key=form_key(form),
                limits=limits(),
                just_sent=False,
            ),
            status=422,
        )
    raise web.HTTPSeeOther(f"/messages/{thread_id}?sent=1#latest")


async def attachment(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    download = await messages.attachment(scope, request.match_info["id"])
    return file_response(download)


async def nav_badge(request: web.Request) -> NavBadge | None:
    """The unread count next to "Messages" in the navigation (patients only)."""
    who = principal(request)
    if who is None or not who.is_patient:
        return None
    count = await messages.unread_count(patient_scope(request))
    return NavBadge(count=count, label=_unread_label(request, count) if count > 0 else "")


def _unread_label(request: web.Request, count: int) -> str:
    from fhir_portal.web.render import translations

    return translations(request).ngettext("%(num)s unread message", "%(num)s unread messages", count) % {
        "num": count
    }
