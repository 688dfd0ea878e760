"""The instant virtual visit queue: the patient's waiting room and the clinician's queue."""

from __future__ import annotations

from aiohttp import web

from fhir_portal import keys
from fhir_portal.auth.roles import Role
from fhir_portal.resources import queue
from fhir_portal.web.context import patient_scope, signed_in, staff_gateway
from fhir_portal.web.format import display_context
from fhir_portal.web.render import render, translate

POLL_SECONDS = 5
SPEED: web.AppKey[queue.QueueSpeed] = web.AppKey("queue_speed", queue.QueueSpeed)


def setup(app: web.Application) -> None:
    app[SPEED] = queue.QueueSpeed()  # how fast the queue moves, shared by every waiting room


async def waiting_room(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    state = await queue.state(scope, request.match_info["id"], speed=request.app[SPEED])
    visit_url = state.visit_url(request.app[keys.SETTINGS].visit_url_template)
    return render(request, "queue/waiting.html", {
        "state": state, "visit_url": visit_url, "poll_seconds": POLL_SECONDS,
        **display_context(request),
    })


async def waiting_json(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    state = await queue.state(scope, request.match_info["id"], speed=request.app[SPEED])
    visit_url = state.visit_url(request.app[keys.SETTINGS].visit_url_template)
    messages = {
        "waiting": translate(request, "You are number %(n)s in the queue.", n=state.position),
        "checked-in": translate(request, "You are checked in. Please wait for your clinician."),
        "booked": translate(request, "Check in first, then come back here."),
        "ready": translate(request, "%(name)s is ready for you now.",
                           name=state.practitioner),
        "left": translate(request, "You have left the queue."),
        "done": translate(request, "This visit has ended."),
    }
    return web.json_response({
        "status": state.status,
        "position": state.position,
        "estimated_minutes": state.estimated_minutes,
        "estimate_text": translate(request, "Estimated wait: about %(n)s minutes.",
                                   n=state.estimated_minutes) if state.estimated_minutes
        else "",
        "message": messages.get(state.status, ""),
        "practitioner": state.practitioner if state.status == "ready" else None,
        "visit_url": visit_url,
        "visit_text": translate(request, "Join the video visit"),
    }, headers={"Cache-Control": "no-store"})


async def leave(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    await queue.leave(scope, request.match_info["id"])
    raise web.HTTPSeeOther("/appointments?left=1")


async def staff_queue(request: web.Request) -> web.Response:
    gateway = staff_gateway(request, Role.CLINICIAN)
    entries = await queue.waiting(gateway)
    return render(request, "queue/staff.html", {
        "entries": entries, "taken": None, "visit_url": None, "empty": False, "gone": False,
        **display_context(request),
    })


async def staff_take(request: web.Request) -> web.Response:
    gateway = staff_gateway(request, Role.CLINICIAN)
    who = signed_in(request)
    form = await request.post()
    wanted = str(form.get("appointment", "")) or None
    if not who.practitioner_id:
        raise web.HTTPForbidden(reason="a clinician account needs a practitioner to take visits")
    name = await queue.practitioner_name(gateway, who.practitioner_id, who.display_name)
    taken = await queue.take(gateway, who.practitioner_id, name, wanted)
    entries = await queue.waiting(gateway)
    visit_url = request.app[keys.SETTINGS].visit_url_template.format(
        appointment_id=taken.appointment_id) if taken else None
    return render(request, "queue/staff.html", {
        "entries": entries, "taken": taken, "visit_url": visit_url,
        "empty": taken is None and wanted is None,
        "gone": taken is None and wanted is not None,
        **display_context(request),
    }, status=409 if taken is None and wanted is not None else 200)
