"""End-to-end tier: the real portal on a real port, over the real HAPI server, driven by
the system Chromium through Playwright, with an axe-core check on every page visited."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, sync_playwright

from fhir_portal.app import create_app
from fhir_portal.settings import ROOT, Settings
from tests.smtp import SmtpSink

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LivePortal:
    url: str
    settings: Settings
    app: web.Application
    loop: asyncio.AbstractEventLoop

    def run(self, coro):  # type: ignore[no-untyped-def]
        """Run a coroutine on the portal's own loop (e.g. to use its account store)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)


@contextmanager
def served(app: web.Application, port: int) -> Iterator[asyncio.AbstractEventLoop]:
    """``app`` served on ``port`` from a thread and event loop of its own, until the block
    ends; yields that loop."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(app)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name=f"served-{port}", daemon=True)
    thread.start()
    assert ready.wait(30), "the server did not start"
    try:
        yield loop
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@contextmanager
def live_portal(fhir_base_url: str, data_dir: Path, **overrides: object) -> Iterator[LivePortal]:
    """The portal served on a free port from a thread of its own, until the block ends."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        host="127.0.0.1", port=port, public_url=url, data_dir=data_dir,
        secret_key=f"e2e-{port}", fhir_base_url=fhir_base_url, **overrides,  # type: ignore[arg-type]
    )
    app = create_app(settings)
    with served(app, port) as loop:
        yield LivePortal(url, settings, app, loop)


@pytest.fixture(scope="session")
def portal(fhir_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    with live_portal(fhir_base_url, tmp_path_factory.mktemp("portal")) as running:
        yield running


@pytest.fixture(scope="module")
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def mail_portal(fhir_base_url: str, smtp_sink: SmtpSink,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    """A portal of its own whose emails go to the module's test SMTP sink."""
    with live_portal(fhir_base_url, tmp_path_factory.mktemp("mail-portal"),
                     smtp_host=smtp_sink.host, smtp_port=smtp_sink.port) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # bypass_csp only so the test can inject axe-core; the portal's CSP stays strict
    context = browser.new_context(bypass_csp=True, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def check_accessibility(page: Page, *, exclude: list[str] | None = None) -> None:
    """Run axe-core (WCAG 2.x A and AA rules) on the current page; fail on any violation."""
    page.add_script_tag(path=str(AXE))
    options = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
    context = {"exclude": [[selector] for selector in exclude or []]}
    result = page.evaluate("([ctx, opts]) => axe.run(ctx, opts)", [context, options])
    violations = result["violations"]
    summary = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in violations
    ]
    assert not violations, f"axe violations on {page.url}:\n{json.dumps(summary, indent=2)}"


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def axe_path() -> Path:
    return AXE
