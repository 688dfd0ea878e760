"""Integration tier: the real embedded HAPI FHIR server, started once per run; never mocked."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiohttp
import pytest

from fhir_portal.app import create_app
from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from fhir_portal.auth.store import AccountStore
from fhir_portal.fhir import FhirGateway
from fhir_portal.fhir.connection import PooledFhirClient
from fhir_portal.settings import Settings
from tests.support import TEST_PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(fhir_base_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        secret_key="integration-secret",
        fhir_base_url=fhir_base_url,
        public_url="http://127.0.0.1:8080",
        fhir_subscription=False,  # nothing listens there: no hooks for the server to retry
    )


@pytest.fixture
async def gateway(fhir_base_url: str):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http:
        yield FhirGateway(PooledFhirClient(fhir_base_url, http))


@pytest.fixture
async def app(settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings)


@pytest.fixture
async def client(aiohttp_client, app):  # type: ignore[no-untyped-def]
    return await aiohttp_client(app)


@pytest.fixture
async def accounts(client, app) -> AccountStore:  # type: ignore[no-untyped-def]
    from fhir_portal import keys

    return app[keys.ACCOUNTS]


async def make_patient_account(
    store: AccountStore, patient_id: str, *, email: str | None = None, complete: bool = True
) -> str:
    email = email or f"{patient_id}-{uuid.uuid4().hex[:6]}@example.org"
    await store.create_account(
        email,
        password_hash=await hash_password(TEST_PASSWORD),
        roles={Role.PATIENT},
        display_name=patient_id,
        patient_id=patient_id,
        email_verified=True,
        profile_complete=complete,
    )
    return email


async def make_staff_account(
    store: AccountStore, role: Role, practitioner_id: str | None = None
) -> str:
    email = f"{role.value}-{uuid.uuid4().hex[:6]}@contoso.example"
    await store.create_account(
        email,
        password_hash=await hash_password(TEST_PASSWORD),
        roles={role},
        display_name=f"Test {role.value}",
        practitioner_id=practitioner_id,
        email_verified=True,
        profile_complete=True,
    )
    return email
