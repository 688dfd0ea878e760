"""Shared test helpers: the test FHIR server, accounts, and signing in through the forms."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from fhir_portal.settings import ROOT, Settings

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TEST_HAPI_PORT = int(os.environ.get("PORTAL_TEST_HAPI_PORT", "8099"))
TEST_PASSWORD = "correct horse battery staple"


def hapi_test_config():  # type: ignore[no-untyped-def]
    from fhir_portal.hapi_server import HapiConfig

    data_dir = Path(os.environ.get("PORTAL_TEST_HAPI_DATA", ROOT / "var" / "test-hapi"))
    return HapiConfig(project_dir=ROOT / "hapi", port=TEST_HAPI_PORT, data_dir=data_dir)


def ensure_test_fhir_server() -> tuple[str, bool]:
    """The base URL of the FHIR server the tests use, and whether this run started it.

    ``PORTAL_TEST_FHIR_BASE_URL`` points at a running server; otherwise the embedded HAPI
    server is started once for the run on its own port and data folder.
    """
    given = os.environ.get("PORTAL_TEST_FHIR_BASE_URL")
    if given:
        return given, False
    from fhir_portal import hapi_server

    cfg = hapi_test_config()
    seconds = hapi_server.start(cfg)
    return hapi_server.base_url(cfg), seconds > 0


def stop_test_fhir_server() -> None:
    from fhir_portal import hapi_server

    hapi_server.stop(hapi_test_config())


def load_fixtures_once(base_url: str, data_dir: Path) -> None:
    from fhir_portal.provision.loader import load_all

    settings = Settings(fhir_base_url=base_url, data_dir=data_dir, secret_key="fixtures")
    run_in_thread(load_all(settings))


def run_in_thread(coro):  # type: ignore[no-untyped-def]
    """asyncio.run in a fresh thread: safe even where a loop already runs (Playwright)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def sign_in(client, email: str, password: str = TEST_PASSWORD):  # type: ignore[no-untyped-def]
    page = await client.get("/login")
    token = csrf_of(await page.text())
    return await client.post(
        "/login", data={"csrf_token": token, "email": email, "password": password},
        allow_redirects=False,
    )


async def post_form(client, page_url: str, action: str, data: dict, **kwargs):  # type: ignore[no-untyped-def]
    """GET a page for its CSRF token, then POST the form to ``action``."""
    page = await client.get(page_url)
    token = csrf_of(await page.text())
    return await client.post(action, data={"csrf_token": token, **data}, **kwargs)
