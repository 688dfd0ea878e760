"""Fixtures shared by the tiers that need the real FHIR server (integration and e2e)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import ensure_test_fhir_server, load_fixtures_once, stop_test_fhir_server


@pytest.fixture(scope="session")
def fhir_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real HAPI server with profiles and fixtures loaded, started once per run."""
    base_url, started = ensure_test_fhir_server()
    load_fixtures_once(base_url, tmp_path_factory.mktemp("fixtures"))
    yield base_url
    if started:
        stop_test_fhir_server()
