"""Hooks the FHIR server calls: REST-hook subscription deliveries (CSRF-exempt).

The server authenticates with the shared secret header of the Subscription; the body is
never trusted: the hook only says which message changed, and the portal reads it back
from the FHIR server itself.
"""

from __future__ import annotations

import hmac
import re

from aiohttp import web

from fhir_portal import keys
from fhir_portal.fhir import FhirError
from fhir_portal.notify import inbox_watch

_TARGET = re.compile(r"^/Communication/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?/?$")


async def fhir_hook(request: web.Request) -> web.Response:
    if request.method not in ("POST", "PUT"):
        raise web.HTTPMethodNotAllowed(request.method, ["POST", "PUT"])
    settings = request.app[keys.SETTINGS]
    given = request.headers.get(inbox_watch.HOOK_HEADER, "")
    if not hmac.compare_digest(given.encode(), inbox_watch.hook_secret(settings).encode()):
        return web.json_response({"error": "unauthorized"}, status=401)
    await request.read()  # drain the body; its content is not used
    watcher = inbox_watch.watcher_for(request.app)
    match = _TARGET.match(request.match_info.get("tail", ""))
    if match:
        try:
            notified = await watcher.handle_id(match.group(1))
        except FhirError:
            # the sweep picks it up later; tell the server to retry as well
            return web.json_response({"status": "retry"}, status=503)
        return web.json_response({"status": "ok", "notified": len(notified)})
    # an empty notification (no payload) or another resource: sweep soon
    watcher.wake()
    return web.json_response({"status": "ok"})
