"""Origin checks: where a redirect may go (``safe_next``), and requests that CSRF tokens
cannot protect (the chat WebSocket).

Browsers send ``Origin`` on every WebSocket handshake and do not apply SameSite rules
consistently to it, so a page on another site could open a socket with the patient's
cookie: the handshake is refused unless the Origin names this portal.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from fhir_portal import keys
from fhir_portal.web.csrf import same_origin


def check_websocket_origin(request: web.Request) -> None:
    """Raise ``HTTPForbidden`` when the Origin is missing or names another site."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        raise web.HTTPForbidden(reason="cross-site request refused")
    if not same_origin(origin, request, request.app[keys.SETTINGS].public_url):
        raise web.HTTPForbidden(reason="cross-site request refused")


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths are followed after sign-in (no open redirect)."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value:
        return default
    return value
