"""What a request carries once the middlewares ran, and the guards views use."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from fhir_portal import keys
from fhir_portal.auth.roles import Principal, Role
from fhir_portal.auth.store import Session
from fhir_portal.fhir import FhirGateway, PatientScope
from fhir_portal.fhir.scope import DirectoryReader

PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal", Principal)  # type: ignore[arg-type]
SESSION: web.RequestKey[Session | None] = web.RequestKey("session", Session)  # type: ignore[arg-type]
LOCALE: web.RequestKey[str] = web.RequestKey("locale", str)
CSRF_TOKEN: web.RequestKey[str] = web.RequestKey("csrf_token", str)


def principal(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)


def session(request: web.Request) -> Session | None:
    return request.get(SESSION)


def locale(request: web.Request) -> str:
    return request.get(LOCALE, request.app[keys.SETTINGS].default_locale)


def tz(request: web.Request) -> ZoneInfo:
    """The patient's time zone (``Settings.timezone``, default Europe/Copenhagen).

    Every date and time a page shows, and every "today" a portal action works out, is in
    this zone; the portal has one zone for all its patients.
    """
    return ZoneInfo(request.app[keys.SETTINGS].timezone)


def page_number(request: web.Request, cap: int = 10_000) -> int:
    """The ``page`` query parameter as a 1-based page number, at most ``cap``; 1 if bad."""
    try:
        return max(1, min(int(request.query.get("page", "1")), cap))
    except ValueError:
        return 1


def signed_in(request: web.Request) -> Principal:
    """The principal, or a redirect to sign in (coming back here afterwards)."""
    who = principal(request)
    if who is None:
        raise web.HTTPSeeOther(f"/login?next={_quote_next(request)}")
    return who


def require_roles(request: web.Request, *roles: Role) -> Principal:
    who = signed_in(request)
    if not who.has(*roles):
        raise web.HTTPForbidden()
    return who


SCOPE: web.RequestKey[PatientScope] = web.RequestKey("patient_scope", PatientScope)


def patient_scope(request: web.Request) -> PatientScope:
    """The FHIR scope of the signed-in patient; staff without a patient context are refused.

    Every access through it is recorded for the request's AuditEvent (web/audit.py). A
    SMART on FHIR session reads from the launching server (its ``iss``) with its token.
    """
    who = signed_in(request)
    if not who.is_patient or who.patient_id is None:
        raise web.HTTPForbidden()
    cached = request.get(SCOPE)
    if cached is not None:
        return cached
    from fhir_portal.web.audit import access_log

    current = request.get(SESSION)
    smart = (current.data.get("smart") if current is not None else None) or None
    if smart:
        scope = PatientScope(smart_gateway(request, smart), who.patient_id)
    else:
        log = access_log(request, who.patient_id)
        scope = PatientScope(request.app[keys.GATEWAY], who.patient_id, on_access=log.record)
    request[SCOPE] = scope
    return scope


def smart_gateway(request: web.Request, smart: dict[str, str]) -> FhirGateway:
    """A gateway to a SMART launch's FHIR server, authorised by the session's bearer token."""
    from fhir_portal.fhir.connection import PooledFhirClient

    client = PooledFhirClient(
        smart["iss"], request.app[keys.HTTP_SESSION],
        authorization=f"Bearer {smart['access_token']}",
    )
    return FhirGateway(client, offset_paging=False)  # an EHR's server: standard searches only


def staff_gateway(request: web.Request, *roles: Role) -> FhirGateway:
    """The unscoped gateway, for staff with one of ``roles`` (any staff role if none given)."""
    who = signed_in(request)
    allowed = roles or (Role.AGENT, Role.CLINICIAN, Role.ADMIN)
    if not who.has(*allowed):
        raise web.HTTPForbidden()
    from fhir_portal.web.audit import audited_gateway

    return audited_gateway(request)  # patient data staff touch is audited per request


def directory(request: web.Request) -> DirectoryReader:
    return DirectoryReader(request.app[keys.GATEWAY])


def _quote_next(request: web.Request) -> str:
    from urllib.parse import quote

    return quote(request.path_qs, safe="")
