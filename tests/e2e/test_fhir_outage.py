"""The FHIR server goes away while a patient writes a message: the page says so, keeps
what was typed, and "Try again" sends it once when the server is back; axe-core on the
outage page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from playwright.sync_api import Page, expect

from tests.e2e.conftest import _free_port, check_accessibility, live_portal, served, sign_in
from tests.e2e.test_messages_flow import DOCTOR, PASSWORD, _sent_with_subject, _setup


@dataclass
class Switch:
    """A reverse proxy in front of the FHIR server that can be switched off (503)."""

    url: str
    up: bool = True
    refused: list[str] = field(default_factory=list)


@contextmanager
def switchable_fhir(target: str) -> Iterator[Switch]:
    port = _free_port()
    switch = Switch(f"http://127.0.0.1:{port}/fhir")

    async def forward(request: web.Request) -> web.StreamResponse:
        if not switch.up:
            switch.refused.append(f"{request.method} {request.path}")
            return web.Response(status=503, text="maintenance")
        url = target.rstrip("/") + request.path_qs[len("/fhir"):]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as http, http.request(
            request.method, url, headers=headers, data=await request.read()
        ) as answer:
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "content-encoding",
                                         "connection")}
            return web.Response(status=answer.status, body=body, headers=kept)

    app = web.Application()
    app.router.add_route("*", "/fhir{tail:.*}", forward)
    with served(app, port):
        yield switch


def test_a_message_typed_during_an_outage_is_kept_and_sent_once(
    page: Page, fhir_base_url: str, tmp_path: Path
) -> None:
    with switchable_fhir(fhir_base_url) as fhir, live_portal(
        fhir.url, tmp_path, fhir_subscription=False
    ) as portal:
        patient_id, email, _ = _setup(portal)
        subject = f"Knee {uuid.uuid4().hex[:6]}"
        text = "My knee still hurts after the fall.\nShould I come in this week?"

        sign_in(page, portal.url, email, PASSWORD)
        page.goto(f"{portal.url}/messages/new")
        page.get_by_label("To").select_option(f"Practitioner/{DOCTOR}")
        page.get_by_label("Subject").fill(subject)
        page.get_by_label("Message", exact=True).fill(text)

        fhir.up = False  # the records system goes away before the patient presses Send
        page.get_by_role("button", name="Send message").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "The service is temporarily unavailable")
        expect(page.get_by_role("heading", level=2, name="What you entered is kept")).to_be_visible()
        expect(page.locator(".kept-text").filter(has_text="My knee still hurts")).to_be_visible()
        check_accessibility(page)
        assert fhir.refused, "the portal never tried the FHIR server"

        kept = page.eval_on_selector_all(
            "form.retry-form input[type=hidden]",
            "inputs => Object.fromEntries(inputs.map(i => [i.name, i.value]))")
        assert kept["body"] == text and "password" not in kept

        fhir.up = True
        retry = page.get_by_role("button", name="Try again")
        retry.focus()
        page.keyboard.press("Enter")  # by keyboard
        expect(page.get_by_role("status")).to_contain_text("Your message has been sent.")
        expect(page.get_by_role("heading", level=1)).to_have_text(subject)
        expect(page.get_by_text("Should I come in this week?")).to_be_visible()
        check_accessibility(page)
        # the kept form sent a second time (an impatient double send) makes no second message
        again = page.request.post(f"{portal.url}/messages/new", form=kept,
                                  headers={"Origin": portal.url}, max_redirects=0)
        assert again.status == 303
        assert _sent_with_subject(portal, patient_id, subject) == 1
