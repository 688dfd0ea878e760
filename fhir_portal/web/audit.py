"""One AuditEvent per request that touched patient data, written in the background.

``web.context.patient_scope`` gives the scope a recorder (``AccessLog.record``) kept on
the request; this middleware, once the handler is done, turns what was collected into
one AuditEvent and hands it to the app's audit trail (web/audit_trail.py), which writes
the events of a short window as one transaction, so the page is not slowed.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from fhir_portal import keys
from fhir_portal.fhir import FhirGateway, SearchPage
from fhir_portal.fhir.gateway import Params, Resource
from fhir_portal.resources import audit as audit_events
from fhir_portal.resources.audit import AccessLog, Actor
from fhir_portal.web.audit_trail import audit_trail
from fhir_portal.web.client_address import client_address
from fhir_portal.web.context import PRINCIPAL

log = logging.getLogger(__name__)

ACCESS_LOG: web.RequestKey[AccessLog] = web.RequestKey("access_log", AccessLog)


def access_log(request: web.Request, patient_id: str | None) -> AccessLog:
    """The request's access log (made on first use), about ``patient_id`` when a patient's."""
    current = request.get(ACCESS_LOG)
    if current is None:
        current = AccessLog(patient_id=patient_id)
        request[ACCESS_LOG] = current
    return current


class AuditedGateway(FhirGateway):
    """The unscoped gateway as staff use it: every patient resource read or written is
    recorded for the request's AuditEvent (directory data is not)."""

    def __init__(self, gateway: FhirGateway, log: AccessLog) -> None:
        super().__init__(gateway.client, offset_paging=gateway.offset_paging)
        self._log = log

    async def read(self, resource_type: str, resource_id: str, *, fresh: bool = False) -> Resource:
        resource = await super().read(resource_type, resource_id, fresh=fresh)
        self._log.record("read", [resource])
        return resource

    async def search(self, resource_type: str, params: Params | None = None, *,
                     fresh: bool = False, single_page: bool = False) -> SearchPage:
        page = await super().search(resource_type, params, fresh=fresh, single_page=single_page)
        self._log.record("search", page.resources + list(page.included.values()))
        return page

    async def next_page(self, page: SearchPage) -> SearchPage | None:
        following = await super().next_page(page)
        if following is not None:
            self._log.record("search", following.resources + list(following.included.values()))
        return following

    async def create(self, resource: Resource, *, if_none_exist: str | None = None) -> Resource:
        created = await super().create(resource, if_none_exist=if_none_exist)
        self._log.record("create", [created])
        return created

    async def update(self, resource: Resource, *, if_match: str | None = None) -> Resource:
        updated = await super().update(resource, if_match=if_match)
        self._log.record("update", [updated])
        return updated


def audited_gateway(request: web.Request) -> FhirGateway:
    return AuditedGateway(request.app[keys.GATEWAY], access_log(request, None))


def actor_of(request: web.Request) -> Actor:
    who = request.get(PRINCIPAL)
    if who is None:
        return Actor(None, address=client_address(request))
    return Actor(
        who.account_id or None, patient_id=who.patient_id if who.is_patient else None,
        practitioner_id=who.practitioner_id, address=client_address(request),
    )


def record_authentication(
    request: web.Request, actor: Actor, *, success: bool, logout: bool = False,
    method: str = "password",
) -> None:
    event = audit_events.authentication_event(actor, success=success, logout=logout,
                                              method=method)
    audit_trail(request.app).add(event)


@web.middleware
async def audit(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    finally:
        collected = request.get(ACCESS_LOG)
        if collected:
            event = audit_events.access_event(collected, actor_of(request))
            audit_trail(request.app).add(event)
