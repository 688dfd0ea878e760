"""One AuditEvent per request that touched patient data, written in the background.

``web.context.patient_scope`` gives the scope a recorder (``AccessLog.record``) kept on
the request; this middleware, once the handler is done, turns what was collected into
one AuditEvent and hands the write to a background task, so the page is not slowed.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from fhir_portal import keys
from fhir_portal.resources import audit as audit_events
from fhir_portal.resources.audit import AccessLog, Actor
from fhir_portal.web.background import spawn
from fhir_portal.web.context import PRINCIPAL

log = logging.getLogger(__name__)

ACCESS_LOG: web.RequestKey[AccessLog] = web.RequestKey("access_log", AccessLog)


def access_log(request: web.Request, patient_id: str) -> AccessLog:
    """The request's access log (made on first use) for ``patient_id``."""
    current = request.get(ACCESS_LOG)
    if current is None:
        current = AccessLog(patient_id=patient_id)
        request[ACCESS_LOG] = current
    return current


def actor_of(request: web.Request) -> Actor:
    who = request.get(PRINCIPAL)
    if who is None:
        return Actor(None, address=request.remote)
    return Actor(
        who.account_id or None, patient_id=who.patient_id if who.is_patient else None,
        practitioner_id=who.practitioner_id, address=request.remote,
    )


def record_authentication(
    request: web.Request, actor: Actor, *, success: bool, logout: bool = False,
    method: str = "password",
) -> None:
    event = audit_events.authentication_event(actor, success=success, logout=logout,
                                              method=method)
    spawn(request.app, audit_events.write(request.app[keys.GATEWAY], event), what="audit")


@web.middleware
async def audit(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    finally:
        collected = request.get(ACCESS_LOG)
        if collected:
            event = audit_events.access_event(collected, actor_of(request))
            spawn(request.app, audit_events.write(request.app[keys.GATEWAY], event),
                  what="audit")
