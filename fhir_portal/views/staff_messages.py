"""Staff console: a clinician reads and answers the patient messages addressed to them."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.auth.roles import Role
from fhir_portal.fhir import FhirGateway
from fhir_portal.fhir.errors import FhirError
from fhir_portal.resources import messages
from fhir_portal.web.background import keyed_locks
from fhir_portal.web.context import signed_in, staff_gateway
from fhir_portal.web.format import formatter
from fhir_portal.web.message_forms import file_response, form_error, form_key, limits, read_upload
from fhir_portal.web.render import render


def _clinician(request: web.Request) -> tuple[FhirGateway, str]:
    gateway = staff_gateway(request, Role.CLINICIAN)
    practitioner_id = signed_in(request).practitioner_id
    if not practitioner_id:
        raise web.HTTPForbidden()
    return gateway, practitioner_id


async def inbox(request: web.Request) -> web.Response:
    gateway, practitioner_id = _clinician(request)
    threads = await messages.clinician_threads(gateway, practitioner_id)
    return render(
        request,
        "staff_messages/list.html",
        {"threads": threads, "fmt": formatter(request)},
    )


async def thread(request: web.Request) -> web.Response:
    gateway, practitioner_id = _clinician(request)
    message_id = request.match_info["id"]
    conversation = await messages.clinician_thread(gateway, practitioner_id, message_id)
    try:
        await messages.clinician_mark_read(gateway, practitioner_id, message_id)
    except FhirError:
        pass  # shown anyway; marked read next time
    return _thread_page(request, conversation, {}, "", messages.new_message_key(), False)


def _thread_page(
    request: web.Request,
    conversation: messages.Thread,
    errors: dict[str, str],
    body: str,
    key: str,
    just_sent: bool,
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "staff_messages/thread.html",
        {
            "thread": conversation,
            "errors": errors,
            "values": {"body": body},
            "key": key,
            "limits": limits(),
            "just_sent": just_sent or request.query.get("sent") == "1",
            "fmt": formatter(request),
        },
        status=status,
    )


async def reply(request: web.Request) -> web.Response:
    gateway, practitioner_id = _clinician(request)
    message_id = request.match_info["id"]
    form = await request.post()
    body = str(form.get("body") or "")
    try:
        filename, data = await read_upload(form)
        upload = messages.check_attachment(filename, data)
        thread_id = await messages.clinician_reply(
            gateway, practitioner_id, message_id, body=body, key=str(form.get("key") or ""),
            locks=keyed_locks(request.app), attachment=upload,
        )
    except messages.MessageError as error:
        conversation = await messages.clinician_thread(gateway, practitioner_id, message_id)
        return _thread_page(
            request, conversation, form_error(request, error), body, form_key(form), False, 422
        )
    raise web.HTTPSeeOther(f"/staff/messages/{thread_id}?sent=1#latest")


async def attachment(request: web.Request) -> web.Response:
    gateway, practitioner_id = _clinician(request)
    download = await messages.clinician_attachment(
        gateway, practitioner_id, request.match_info["id"]
    )
    return file_response(download)
