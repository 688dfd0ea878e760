"""/healthz: the portal's and the FHIR server's state, as JSON."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from fhir_portal import keys
from fhir_portal.fhir import FhirError


async def healthz(request: web.Request) -> web.Response:
    gateway = request.app[keys.GATEWAY]
    started = time.perf_counter()
    fhir: dict[str, object] = {"url": gateway.base_url}
    try:
        await asyncio.wait_for(gateway.metadata(), timeout=5)
    except (TimeoutError, FhirError) as exc:
        fhir.update(status="down", error=type(exc).__name__)
    else:
        fhir.update(status="up", latency_ms=round((time.perf_counter() - started) * 1000, 1))
    accounts: dict[str, object]
    try:
        async with request.app[keys.ACCOUNTS].db.execute("SELECT 1") as cursor:
            await cursor.fetchone()
        accounts = {"status": "up"}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        accounts = {"status": "down", "error": type(exc).__name__}
    healthy = fhir["status"] == "up" and accounts["status"] == "up"
    body = {
        "status": "ok" if healthy else "degraded",
        "portal": {"status": "up"},
        "fhir": fhir,
        "accounts": accounts,
    }
    return web.json_response(body, status=200 if healthy else 503)
