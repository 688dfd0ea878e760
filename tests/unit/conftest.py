"""Unit tier: no servers. The FHIR base URL points at a closed port unless a test mocks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_portal.app import create_app
from fhir_portal.settings import Settings


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    port = closed_port()
    return Settings(
        data_dir=tmp_path,
        secret_key="unit-test-secret",
        fhir_base_url=f"http://127.0.0.1:{port}/fhir",
        fhir_timeout=2.0,
        fhir_connect_timeout=1.0,
        public_url="http://127.0.0.1:8080",
    )


@pytest.fixture
async def client(aiohttp_client, settings):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(settings))
