"""CSRF protection for every state-changing request.

The token is an HMAC of the session id (or, before sign-in, of a random cookie), so it
needs no storage; forms carry it in ``csrf_token`` and scripts in ``X-CSRF-Token``. A
cross-site ``Origin`` is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from fhir_portal import keys
from fhir_portal.i18n import N_
from fhir_portal.web.context import CSRF_TOKEN, SESSION

ANON_COOKIE = "portal_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Endpoints authenticated otherwise (a shared secret from the FHIR server).
EXEMPT_PREFIXES = ("/hooks/",)


def _token(secret: str, binding: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[keys.SETTINGS]
    session = request.get(SESSION)
    anon = request.cookies.get(ANON_COOKIE)
    new_anon = None
    if session is not None:
        binding = session.id_hash
    else:
        if not anon:
            anon = new_anon = secrets.token_urlsafe(24)
        binding = anon
    expected = _token(settings.secret_key, binding)
    request[CSRF_TOKEN] = expected

    if request.method not in SAFE_METHODS and not request.path.startswith(EXEMPT_PREFIXES):
        origin = request.headers.get("Origin")
        if origin and origin != "null" and not same_origin(origin, request, settings.public_url):
            raise web.HTTPForbidden(reason=N_("Requests from other sites are refused."))
        sent = request.headers.get(HEADER)
        if sent is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()
            value = form.get(FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, expected):
            raise web.HTTPForbidden(reason=N_("The form has expired. Reload the page and try again."))

    response = await handler(request)
    if new_anon and not response.prepared:
        response.set_cookie(
            ANON_COOKIE, new_anon, path="/", httponly=True, samesite="Lax",
            secure=settings.cookie_secure,
        )
    return response


def same_origin(origin: str, request: web.Request, public_url: str) -> bool:
    """Whether an Origin header names this portal (its public URL or the Host it was sent to)."""
    parts = urlsplit(origin)
    allowed = {urlsplit(public_url).netloc, request.host}
    return parts.netloc in allowed
