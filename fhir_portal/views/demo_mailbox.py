"""Demo only: an SMTP sink inside the portal and ``/demo/mailbox`` to read what it got.

With ``Settings.demo_mailbox`` (set by ``fhir-portal demo``) the app listens for SMTP on
``smtp_host:smtp_port`` itself (aiosmtpd, in the app's event loop), so notification
emails of the demo arrive somewhere visible without any mail server. The page is only
routed in demo mode; it shows mail for every address, which is fine for demo data only.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from aiohttp import web

from fhir_portal import keys
from fhir_portal.web.context import signed_in
from fhir_portal.web.render import render

MAX_KEPT = 200


@dataclass
class Mail:
    to: str
    subject: str
    text: str
    received: datetime


@dataclass
class Mailbox:
    mails: list[Mail] = field(default_factory=list)

    def add(self, raw: bytes, recipients: list[str]) -> None:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        text = ""
        if isinstance(message, EmailMessage):
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
        self.mails.insert(0, Mail(
            to=", ".join(recipients) or str(message.get("To", "")),
            subject=str(message.get("Subject", "")),
            text=text,
            received=datetime.now(UTC),
        ))
        del self.mails[MAX_KEPT:]


MAILBOX: web.AppKey[Mailbox] = web.AppKey("demo_mailbox", Mailbox)


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        self.mailbox.add(raw, [str(r) for r in envelope.rcpt_tos])
        return "250 Message accepted for delivery"


async def smtp_sink(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the in-process SMTP sink (only when ``demo_mailbox`` is on)."""
    settings = app[keys.SETTINGS]
    if not settings.demo_mailbox:
        yield
        return
    from aiosmtpd.smtp import SMTP  # demo only

    mailbox = Mailbox()
    app[MAILBOX] = mailbox
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(_Handler(mailbox), hostname="localhost"),
        host=settings.smtp_host, port=settings.smtp_port,
    )
    yield
    server.close()
    await server.wait_closed()


async def mailbox_page(request: web.Request) -> web.Response:
    signed_in(request)
    mailbox = request.app.get(MAILBOX) or Mailbox()
    return render(request, "demo/mailbox.html", {"mails": mailbox.mails})
