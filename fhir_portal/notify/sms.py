"""Sending one SMS through a configurable HTTP webhook (httpx).

The webhook gets ``POST {sms_webhook_url}`` with JSON ``{"to": "+45...", "text": "..."}``
and, when ``sms_webhook_token`` is set, ``Authorization: Bearer <token>``. Any 2xx answer
counts as accepted; anything else (or no answer) raises ``SmsError``.
"""

from __future__ import annotations

import logging
import re

import httpx

from fhir_portal.settings import Settings

log = logging.getLogger(__name__)
PHONE = re.compile(r"^\+?[0-9 ()-]{6,20}$")


class SmsError(Exception):
    """The SMS could not be handed to the webhook."""


class SmsNotConfigured(SmsError):
    """No webhook URL is configured: SMS cannot be sent at all."""


def normalise_phone(value: str) -> str:
    """A phone number with spaces, dashes and brackets removed (``+4520123456``)."""
    return re.sub(r"[ ()-]", "", value or "")


def is_phone(value: str) -> bool:
    return bool(value) and bool(PHONE.match(value.strip())) and len(normalise_phone(value)) >= 6


async def send_sms(
    settings: Settings, *, to: str, text: str, client: httpx.AsyncClient | None = None
) -> None:
    """POST one SMS to the webhook; raises ``SmsError`` when it was not accepted."""
    if not settings.sms_webhook_url:
        raise SmsNotConfigured("no SMS webhook is configured")
    if not is_phone(to):
        raise SmsError("invalid phone number")
    headers = {"Content-Type": "application/json"}
    if settings.sms_webhook_token:
        headers["Authorization"] = f"Bearer {settings.sms_webhook_token}"
    payload = {"to": normalise_phone(to), "text": text}
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=10) as own:
                response = await own.post(settings.sms_webhook_url, json=payload, headers=headers)
        else:
            response = await client.post(settings.sms_webhook_url, json=payload, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("SMS webhook unreachable: %s", type(exc).__name__)
        raise SmsError(f"the SMS webhook could not be reached ({type(exc).__name__})") from exc
    if not 200 <= response.status_code < 300:
        log.warning("SMS webhook answered %s", response.status_code)
        raise SmsError(f"the SMS webhook answered {response.status_code}")
