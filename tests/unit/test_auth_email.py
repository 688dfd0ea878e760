"""send_email against a real (in-process) SMTP server, and its failure."""

from __future__ import annotations

import pytest

from fhir_portal.notify.email import EmailError, send_email
from fhir_portal.settings import Settings
from tests.smtp import SmtpSink, body_of, links_in
from tests.unit.conftest import closed_port


async def test_send_email_reaches_the_smtp_server(tmp_path):
    with SmtpSink() as sink:
        settings = Settings(data_dir=tmp_path, secret_key="x", smtp_host=sink.host,
                            smtp_port=sink.port)
        await send_email(settings, to="anna@example.org", subject="Bekræft din e-mail",
                         text="Hej Anna\nÅbn https://portal.example/verify?t=abc.\n")
        message = await sink.wait_for_async("anna@example.org", timeout=5)
        assert message["Subject"] == "Bekræft din e-mail"
        assert "Contoso" in message["From"]
        assert "Hej Anna" in body_of(message)
        assert links_in(message) == ["https://portal.example/verify?t=abc"]
        # the sync helper sees the same message (e2e tests use it)
        assert sink.wait_for("ANNA@example.org", timeout=1) is message


async def test_send_email_raises_email_error_when_the_server_is_down(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key="x", smtp_port=closed_port())
    with pytest.raises(EmailError):
        await send_email(settings, to="anna@example.org", subject="s", text="t")


async def test_header_injection_in_the_recipient_is_refused(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key="x")
    with pytest.raises(EmailError):
        await send_email(settings, to="a@example.org\r\nBcc: b@example.org", subject="s", text="t")


def test_wait_for_times_out():
    with SmtpSink() as sink, pytest.raises(TimeoutError):
        sink.wait_for("nobody@example.org", timeout=0.2)
