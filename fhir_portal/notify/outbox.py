"""The outbox worker: delivers the notifications recorded in FHIR, with retries.

Started from ``app.py`` (a cleanup context). Every ``interval`` seconds it asks the FHIR
server for due notifications (``resources/notifications.pending``), claims each with a
versioned update (so concurrent workers never send one twice), sends it, and marks it
completed. A failed attempt is retried with exponential backoff (``base`` · 2^(n-1),
capped at ``cap`` seconds; the attempt count and next attempt are kept in the
Communication's delivery extension). While the SMTP server does not answer at all, email
is not even claimed: no attempt is spent, nothing is lost, and delivery happens on the
first round after it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiosmtplib
from aiohttp import web

from fhir_portal import keys
from fhir_portal.fhir import FhirGateway
from fhir_portal.notify.email import EmailError, send_email
from fhir_portal.notify.sms import SmsError, send_sms
from fhir_portal.resources import notifications
from fhir_portal.settings import Settings
from fhir_portal.web.background import periodic, stop

log = logging.getLogger(__name__)


@dataclass
class Outbox:
    gateway: FhirGateway
    settings: Settings
    interval: float = 3.0
    base: float = 30.0
    cap: float = 3600.0
    delivered: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def smtp_reachable(self) -> bool:
        """Whether the SMTP server answers (connects and greets) right now."""
        smtp = aiosmtplib.SMTP(
            hostname=self.settings.smtp_host, port=self.settings.smtp_port, timeout=5
        )
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            return False
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await smtp.quit()
        return True

    async def run_once(self) -> int:
        """One round: deliver what is due; returns how many were delivered."""
        mediums = ("email", "sms") if self.settings.sms_webhook_url else ("email",)
        due = await notifications.pending(self.gateway, mediums=mediums)
        smtp_up: bool | None = None
        done = 0
        for item in due:
            if item.medium == "email":
                if smtp_up is None:
                    smtp_up = await self.smtp_reachable()
                if not smtp_up:
                    continue
            claimed = await notifications.claim(self.gateway, item, base=self.base, cap=self.cap)
            if claimed is None:
                continue
            try:
                if claimed.medium == "email":
                    await send_email(self.settings, to=claimed.to, subject=claimed.subject,
                                     text=claimed.body)
                else:
                    await send_sms(self.settings, to=claimed.to, text=claimed.body)
            except (EmailError, SmsError) as exc:
                log.info("notification %s attempt %s failed: %s", claimed.id,
                         claimed.attempts, type(exc).__name__)
                await notifications.failed(self.gateway, claimed, type(exc).__name__)
                continue
            await notifications.complete(self.gateway, claimed)
            done += 1
        self.delivered += done
        return done

    def wake(self) -> None:
        """Deliver soon instead of at the next interval."""
        self._wake.set()

    async def run(self) -> None:
        await periodic("outbox round", self.run_once, every=self.interval, wake=self._wake)


OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox", Outbox)


async def outbox_worker(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the outbox worker for the lifetime of the app."""
    outbox = Outbox(app[keys.GATEWAY], app[keys.SETTINGS])
    app[OUTBOX] = outbox
    task = asyncio.create_task(outbox.run(), name="outbox")
    yield
    await stop(task)


def sender(app: web.Application) -> notifications.Sender:
    """Where a request queues its notifications (the app's own FHIR server)."""
    return notifications.Sender(
        app[keys.GATEWAY], sms_enabled=bool(app[keys.SETTINGS].sms_webhook_url)
    )


def wake(app: web.Application) -> None:
    """Ask the app's worker to deliver now (after an enqueue from a request)."""
    outbox = app.get(OUTBOX)
    if outbox is not None:
        outbox.wake()
