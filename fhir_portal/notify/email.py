"""Sending one email over SMTP (aiosmtplib), with the settings ``smtp_*`` and ``mail_from``.

Account emails (verification, activation, password reset) are sent directly with
``send_email``; clinical notifications go through the outbox, which uses it as well.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from fhir_portal.settings import Settings

log = logging.getLogger(__name__)


class EmailError(Exception):
    """The message could not be handed to the SMTP server."""


def build_message(settings: Settings, *, to: str, subject: str, text: str) -> EmailMessage:
    if not to or "\n" in to or "\r" in to or "@" not in to:
        raise EmailError("invalid recipient address")
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = " ".join(subject.splitlines())
    message["Date"] = formatdate(localtime=False)
    domain = settings.mail_from.rpartition("@")[2].rstrip(">").strip() or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, charset="utf-8")
    return message


async def send_email(settings: Settings, *, to: str, subject: str, text: str) -> None:
    """Send a plain-text email; raises ``EmailError`` when it could not be delivered."""
    message = build_message(settings, to=to, subject=subject, text=text)
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user or None,
            password=settings.smtp_password or None,
            start_tls=settings.smtp_starttls,
            timeout=10,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        # never log the body or the recipient: it may identify a patient
        log.warning("email could not be sent: %s", type(exc).__name__)
        raise EmailError(f"the email could not be sent ({type(exc).__name__})") from exc
