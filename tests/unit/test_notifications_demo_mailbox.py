"""The demo's in-process SMTP sink and its /demo/mailbox page."""

from __future__ import annotations

import socket
from dataclasses import replace

from fhir_portal import keys
from fhir_portal.app import create_app
from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from fhir_portal.notify.email import send_email
from tests.support import TEST_PASSWORD, sign_in


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_mail_sent_in_demo_mode_shows_in_the_mailbox(aiohttp_client, settings) -> None:
    demo = replace(settings, demo_mailbox=True, smtp_port=_free_port())
    client = await aiohttp_client(create_app(demo))
    await send_email(demo, to="anna@example.org", subject="Your appointment is booked",
                     text="Check in: http://127.0.0.1:8080/checkin/abc")
    store = client.server.app[keys.ACCOUNTS]
    await store.create_account("demo-viewer@example.org",
                               password_hash=await hash_password(TEST_PASSWORD),
                               roles={Role.ADMIN}, display_name="Viewer", email_verified=True,
                               profile_complete=True)
    assert (await sign_in(client, "demo-viewer@example.org")).status == 303
    page = await client.get("/demo/mailbox")
    text = await page.text()
    assert page.status == 200
    assert "Your appointment is booked" in text and "anna@example.org" in text
    assert 'href="http://127.0.0.1:8080/checkin/abc"' in text


async def test_no_mailbox_outside_demo_mode(client) -> None:
    assert (await client.get("/demo/mailbox")).status == 404
