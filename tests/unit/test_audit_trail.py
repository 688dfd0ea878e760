"""The audit trail: events of one window go as one transaction; an outage keeps them (in
order) for a retry; a refused transaction is split so only the bad event is lost."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from fhir_portal import keys
from fhir_portal.fhir.errors import FhirInvalid, FhirUnavailable
from fhir_portal.web import audit_trail as trail_module
from fhir_portal.web.audit_trail import AuditTrail
from fhir_portal.web.background import TASKS, drain


class RecordingGateway:
    def __init__(self) -> None:
        self.transactions: list[list[dict[str, Any]]] = []
        self.created: list[dict[str, Any]] = []
        self.down = False
        self.refuse: set[int] = set()  # event numbers the server refuses
        self.poison: set[int] = set()  # event numbers the server fails on with a 5xx
        self.broken = 0  # unexpected errors still to raise

    async def transaction(self, entries: list[dict[str, Any]], *, minimal: bool = False) -> dict:
        assert minimal
        if self.broken:
            self.broken -= 1
            raise RuntimeError("Session is closed")
        if self.down:
            raise FhirUnavailable("down")
        events = [entry["resource"] for entry in entries]
        if any(event["n"] in self.poison for event in events):
            raise FhirUnavailable("HAPI-0000: 500")
        assert all(e["request"] == {"method": "POST", "url": "AuditEvent"} for e in entries)
        if any(event["n"] in self.refuse for event in events):
            raise FhirInvalid("HAPI-0450: invalid")
        self.transactions.append(events)
        return {"resourceType": "Bundle", "type": "transaction-response"}

    async def create(self, event: dict[str, Any]) -> dict:
        if self.down:
            raise FhirUnavailable("down")
        if event["n"] in self.refuse:
            raise FhirInvalid("HAPI-0450: invalid")
        if event["n"] in self.poison:
            raise FhirUnavailable("HAPI-0000: 500")
        self.created.append(event)
        return event


def make(window: float = 0.05, max_batch: int = 100, max_pending: int = 1000):
    app = web.Application()
    app[TASKS] = set()
    gateway = RecordingGateway()
    app[keys.GATEWAY] = gateway  # type: ignore[assignment]
    return app, gateway, AuditTrail(app, window=window, max_batch=max_batch, max_pending=max_pending)


def event(n: int) -> dict[str, Any]:
    return {"resourceType": "AuditEvent", "n": n}


async def test_one_window_is_one_transaction_in_order() -> None:
    app, gateway, trail = make()
    for n in range(5):
        trail.add(event(n))
    assert gateway.transactions == []  # nothing is written inside the request
    await drain(app)
    assert [[e["n"] for e in t] for t in gateway.transactions] == [[0, 1, 2, 3, 4]]
    assert trail.written == 5 and trail.pending == 0


async def test_a_full_batch_goes_at_once() -> None:
    app, gateway, trail = make(window=3600, max_batch=3)
    for n in range(3):
        trail.add(event(n))
    await asyncio.sleep(0.01)
    assert [[e["n"] for e in t] for t in gateway.transactions] == [[0, 1, 2]]
    await drain(app, 0.05, cancel=True)


async def test_an_outage_keeps_the_events_for_a_retry(monkeypatch) -> None:
    monkeypatch.setattr(trail_module, "RETRY_CAP_SECONDS", 0.05)
    app, gateway, trail = make(window=0.01)
    gateway.down = True
    for n in range(4):
        trail.add(event(n))
    await asyncio.sleep(0.05)
    assert trail.pending == 4 and gateway.transactions == []
    trail.add(event(4))
    gateway.down = False
    await drain(app)
    written = [e["n"] for t in gateway.transactions for e in t]
    assert written == [0, 1, 2, 3, 4] and trail.pending == 0


async def test_a_refused_event_costs_only_itself() -> None:
    app, gateway, trail = make()
    gateway.refuse = {2}
    for n in range(4):
        trail.add(event(n))
    await drain(app)
    assert gateway.transactions == []
    assert [e["n"] for e in gateway.created] == [0, 1, 3]


async def test_memory_is_bounded_while_the_server_is_away() -> None:
    app, gateway, trail = make(window=3600, max_pending=3)
    gateway.down = True
    for n in range(5):
        trail.add(event(n))
    assert trail.pending == 3 and trail.dropped == 2
    await drain(app, 0.01, cancel=True)


async def test_an_event_the_server_always_fails_on_does_not_hold_up_the_rest(monkeypatch) -> None:
    monkeypatch.setattr(trail_module, "RETRY_CAP_SECONDS", 0.02)
    app, gateway, trail = make(window=0.005)
    gateway.poison = {1}
    for n in range(4):
        trail.add(event(n))
    await drain(app)
    assert [e["n"] for e in gateway.created] == [0, 2, 3]  # written one by one in the end
    assert trail.pending == 0 and trail.dropped == 1 and trail.written == 3


async def test_an_unexpected_error_keeps_the_events(monkeypatch) -> None:
    monkeypatch.setattr(trail_module, "RETRY_CAP_SECONDS", 0.02)
    app, gateway, trail = make(window=0.005)
    gateway.broken = 2
    for n in range(3):
        trail.add(event(n))
    await drain(app)
    assert [e["n"] for t in gateway.transactions for e in t] == [0, 1, 2]


async def test_shutdown_tries_once_more_then_counts_what_is_left(caplog) -> None:
    app, gateway, trail = make(window=3600)
    trail.add(event(0))
    await trail.close()  # the hour-long window is not waited for
    assert [e["n"] for t in gateway.transactions for e in t] == [0]
    gateway.down = True
    trail.add(event(1))
    await trail.close(seconds=0.05)
    assert trail.pending == 1 and "1 audit events not written at shutdown" in caplog.text
    await drain(app, 0.05, cancel=True)
