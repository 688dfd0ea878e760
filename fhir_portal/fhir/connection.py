"""One shared HTTP connection pool to a FHIR server, driven through fhirpy.

fhirpy's async client opens a new aiohttp session for every request, which costs about
four times as much per read on loopback. ``PooledFhirClient`` keeps fhirpy's request
building and search API but sends everything through one ``aiohttp.ClientSession`` that
the application owns, with timeouts, one retry of idempotent reads, and the server's
answers mapped to the gateway's domain errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from fhirpy import AsyncFHIRClient

from fhir_portal.fhir.errors import (
    FhirConflict,
    FhirError,
    FhirForbidden,
    FhirInvalid,
    FhirNotFound,
    FhirUnavailable,
)

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
_IDEMPOTENT = {"get", "head"}
_RETRY_STATUSES = {502, 503, 504}


class PooledFhirClient(AsyncFHIRClient):
    """fhirpy's client over a shared session; errors become ``FhirError`` subclasses."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        authorization: str | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        retries: int = 1,
    ) -> None:
        super().__init__(
            url,
            authorization=authorization,
            extra_headers={"Accept": FHIR_JSON},
        )
        self._session = session
        self._timeout = timeout
        self._retries = retries

    async def _do_request(  # type: ignore[override]
        self,
        method: str,
        path: str,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        extra_headers: dict[str, str] | None = None,
        *,
        returning_status: bool = False,
    ) -> Any:
        headers = self._build_request_headers()
        if extra_headers:
            headers.update(extra_headers)
        if data is not None:
            headers["Content-Type"] = FHIR_JSON
        url = self._build_request_url(path, params)
        attempts = 1 + (self._retries if method.lower() in _IDEMPOTENT else 0)
        for attempt in range(attempts):
            try:
                status, body = await self._send(method, url, data, headers)
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                raise FhirUnavailable(f"FHIR server unreachable: {type(exc).__name__}") from exc
            if status in _RETRY_STATUSES and attempt + 1 < attempts:
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            result = _map_response(method, path, status, body)
            return (result, status) if returning_status else result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self, method: str, url: str, data: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[int, str]:
        payload = json.dumps(data) if data is not None else None
        async with self._session.request(
            method, url, data=payload, headers=headers, timeout=self._timeout
        ) as response:
            return response.status, await response.text()


def _map_response(method: str, path: str, status: int, body: str) -> Any:
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            parsed = None
    if 200 <= status < 300:
        return parsed
    if status == 304:
        return None
    outcome = parsed if isinstance(parsed, dict) and parsed.get("resourceType") == (
        "OperationOutcome"
    ) else None
    where = f"{method.upper()} {path.split('?')[0]}"
    log.info("FHIR %s answered %s", where, status)
    if status in (404, 410):
        raise FhirNotFound(f"{where}: not found", outcome)
    if status in (409, 412):
        raise FhirConflict(f"{where}: version conflict", outcome)
    if status in (401, 403):
        raise FhirForbidden(f"{where}: refused ({status})", outcome)
    if status in (400, 422):
        raise FhirInvalid(f"{where}: invalid ({status})", outcome)
    if status >= 500 and _lost_optimistic_lock(outcome):
        # HAPI (8.8, H2) reports a versioned write that lost a race at flush time as 500
        # HAPI-2223 ("unexpected row count") instead of 409; nothing was written
        raise FhirConflict(f"{where}: version conflict (at commit)", outcome)
    if status >= 500:
        raise FhirUnavailable(f"{where}: server error {status}", outcome)
    raise FhirError(f"{where}: unexpected status {status}", outcome)


def _lost_optimistic_lock(outcome: dict[str, Any] | None) -> bool:
    for issue in (outcome or {}).get("issue", []):
        text = str(issue.get("diagnostics") or "")
        if "HAPI-2223" in text or "unexpected row count" in text:
            return True
    return False
