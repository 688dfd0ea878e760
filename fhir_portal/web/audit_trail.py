"""The app's AuditEvent writer: events are gathered for a short window and written to the
FHIR server as one transaction.

One AuditEvent per request stays the rule (each keeps the time it was recorded); only the
writing is grouped. Measured on HAPI 8.8 here: a transaction of 10 AuditEvents costs the
server about half the CPU per event of 10 separate creates, and a page view no longer
leaves a write running beside the next page's queries.

When the FHIR server is down, the events wait in memory (up to ``max_pending``; beyond
that the oldest are dropped with an error in the log) and are retried with a growing
delay. A transaction the server refuses as invalid is split into single creates, so one
bad event costs only itself. At shutdown, the background-task drain waits for the last
flush.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from aiohttp import web

from fhir_portal import keys
from fhir_portal.fhir import FhirError, FhirGateway
from fhir_portal.fhir.errors import FhirUnavailable
from fhir_portal.fhir.gateway import Resource
from fhir_portal.web.background import spawn

log = logging.getLogger(__name__)

WINDOW_SECONDS = 1.0
MAX_BATCH = 100
MAX_PENDING = 10_000
RETRY_CAP_SECONDS = 60.0


class AuditTrail:
    def __init__(
        self,
        app: web.Application,
        *,
        window: float = WINDOW_SECONDS,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._app = app
        self._window = window
        self._max_batch = max_batch
        self._pending: deque[Resource] = deque()
        self._max_pending = max_pending
        self._scheduled: asyncio.Task[Any] | None = None
        self._failures = 0
        self.written = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, event: Resource) -> None:
        """Queue one event; it is written within the window (sooner when a batch is full)."""
        self._pending.append(event)
        while len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.dropped += 1
            log.error("audit trail full while the FHIR server is unreachable: event dropped")
        if len(self._pending) >= self._max_batch and self._failures == 0:
            self._schedule(0.0)
        else:
            self._schedule(self._window)

    def _schedule(self, delay: float) -> None:
        if delay <= 0:  # a full batch goes now, beside any flush already on its way
            spawn(self._app, self.flush(), what="audit")
            return
        current = self._scheduled
        if current is None or current.done():
            self._scheduled = spawn(self._app, self._flush_after(delay), what="audit")

    async def _flush_after(self, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:  # shutdown while the server was still away
            if self._pending:
                log.error("%d audit events not written at shutdown", len(self._pending))
            raise
        self._scheduled = None
        await self.flush()

    async def flush(self) -> None:
        """Write everything pending now (batch by batch); on an outage, retry later."""
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))]
            try:
                await self._write(batch)
            except FhirUnavailable:
                self._pending.extendleft(reversed(batch))  # keep them, in order
                self._failures += 1
                delay = min(RETRY_CAP_SECONDS, self._window * 2**self._failures)
                log.warning("audit events kept for a retry in %.0f s: FHIR server unavailable", delay)
                self._schedule(delay)
                return
            self._failures = 0
            self.written += len(batch)

    @property
    def _gateway(self) -> FhirGateway:
        return self._app[keys.GATEWAY]  # set at start-up, with the connection pool

    async def _write(self, batch: list[Resource]) -> None:
        entries = [
            {"resource": event, "request": {"method": "POST", "url": "AuditEvent"}}
            for event in batch
        ]
        try:
            await self._gateway.transaction(entries, minimal=True)
            return
        except FhirUnavailable:
            raise
        except FhirError as exc:
            if len(batch) == 1:
                log.error("audit event refused by the FHIR server: %s", type(exc).__name__)
                return
        for event in batch:  # one refused event must not take the others with it
            try:
                await self._gateway.create(event)
            except FhirUnavailable:
                raise
            except FhirError as exc:
                log.error("audit event refused by the FHIR server: %s", type(exc).__name__)


AUDIT_TRAIL: web.AppKey[AuditTrail] = web.AppKey("audit_trail", AuditTrail)


def audit_trail(app: web.Application) -> AuditTrail:
    """The app's writer (``create_app`` puts one on every app)."""
    return app[AUDIT_TRAIL]
