"""Hooks the FHIR server calls: REST-hook subscription deliveries (CSRF-exempt).

The server authenticates with the shared secret header of the Subscription; the body is
never trusted: the hook only says which message changed, and the portal reads it back
from the FHIR server itself.

Every answer is a FHIR ``OperationOutcome``: a FHIR server's REST-hook client parses the
response of its PUT as a resource (HAPI counts any other JSON as a failed delivery and
keeps retrying it, which holds up every later delivery on that subscription's channel).
"""

from __future__ import annotations

import hmac
import logging
import re

from aiohttp import web

from fhir_portal import keys
from fhir_portal.fhir import FhirError, FhirUnavailable
from fhir_portal.notify import inbox_watch

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"

_TARGET = re.compile(r"^/Communication/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?/?$")


def outcome(status: int, severity: str, code: str, text: str) -> web.Response:
    """An OperationOutcome answer (what the FHIR server's hook client can parse)."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }
    return web.json_response(body, status=status, content_type=FHIR_JSON)


async def fhir_hook(request: web.Request) -> web.Response:
    if request.method not in ("POST", "PUT"):
        raise web.HTTPMethodNotAllowed(request.method, ["POST", "PUT"])
    settings = request.app[keys.SETTINGS]
    given = request.headers.get(inbox_watch.HOOK_HEADER, "")
    if not hmac.compare_digest(given.encode(), inbox_watch.hook_secret(settings).encode()):
        return outcome(401, "error", "login", "unauthorized")
    await request.read()  # drain the body; its content is not used
    watcher = inbox_watch.watcher_for(request.app)
    match = _TARGET.match(request.match_info.get("tail", ""))
    if match:
        try:
            notified = await watcher.handle_id(match.group(1))
        except FhirUnavailable:
            # the sweep picks it up later; tell the server to retry as well
            return outcome(503, "error", "transient", "retry later")
        except FhirError as exc:
            # a retry would fail the same way and hold up the server's delivery channel:
            # acknowledge it; the catch-up sweep sees the message again
            log.warning("hook for a message not handled: %s", type(exc).__name__)
            return outcome(200, "warning", "processing", "not handled; the sweep will retry")
        return outcome(200, "information", "informational", f"notified {len(notified)}")
    # an empty notification (no payload) or another resource: sweep soon
    watcher.wake()
    return outcome(200, "information", "informational", "sweep scheduled")
