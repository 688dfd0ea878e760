"""The SMS webhook sender, with the webhook mocked by respx."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx

from fhir_portal.notify.sms import SmsError, SmsNotConfigured, send_sms
from fhir_portal.settings import Settings

HOOK = "https://sms.example.test/api/send"


def _settings(tmp_path: Path, **values: str) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="x", **values)


@respx.mock
async def test_posts_json_with_the_bearer_token(tmp_path: Path) -> None:
    route = respx.post(HOOK).mock(return_value=httpx.Response(202))
    await send_sms(_settings(tmp_path, sms_webhook_url=HOOK, sms_webhook_token="t0k"),
                   to="+45 20 12 34 56", text="Booked")
    request = route.calls.last.request
    assert json.loads(request.content) == {"to": "+4520123456", "text": "Booked"}
    assert request.headers["Authorization"] == "Bearer t0k"


@respx.mock
async def test_a_refusing_or_unreachable_webhook_raises(tmp_path: Path) -> None:
    settings = _settings(tmp_path, sms_webhook_url=HOOK)
    respx.post(HOOK).mock(return_value=httpx.Response(500))
    with pytest.raises(SmsError):
        await send_sms(settings, to="+4520123456", text="x")
    respx.post(HOOK).mock(side_effect=httpx.ConnectError("down"))
    with pytest.raises(SmsError):
        await send_sms(settings, to="+4520123456", text="x")


async def test_no_webhook_or_a_bad_number_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SmsNotConfigured):
        await send_sms(_settings(tmp_path), to="+4520123456", text="x")
    with pytest.raises(SmsError):
        await send_sms(_settings(tmp_path, sms_webhook_url=HOOK), to="call me", text="x")
