"""``fhir-portal demo``: load the fixtures and make sign-in accounts for the demo people."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from fhir_portal.auth.staff import create_staff
from fhir_portal.auth.store import AccountStore
from fhir_portal.provision.loader import load_all
from fhir_portal.settings import Settings

DEMO_PASSWORD = "Contoso-demo-2026"  # noqa: S105 - printed by the demo on purpose


@dataclass(frozen=True)
class DemoPatient:
    email: str
    patient_id: str
    name: str
    locale: str


DEMO_PATIENTS = (
    DemoPatient("anna@example.org", "pat-anna", "Anna Jensen", "da"),
    DemoPatient("bjorn@example.org", "pat-bjorn", "Bjørn Nielsen", "da"),
    DemoPatient("chloe@example.org", "pat-chloe", "Chloe Smith", "en"),
)
DEMO_STAFF = (
    ("agent@contoso.example", "agent", None, "Pat Service (agent)"),
    ("clinician@contoso.example", "clinician", "prac-mette-hansen", "Dr. Mette Hansen"),
    ("admin@contoso.example", "admin", None, "Portal admin"),
)


async def ensure_demo_accounts(store: AccountStore) -> None:
    password_hash = await hash_password(DEMO_PASSWORD)
    for person in DEMO_PATIENTS:
        if await store.account_by_email(person.email) is None:
            await store.create_account(
                person.email,
                password_hash=password_hash,
                roles={Role.PATIENT},
                display_name=person.name,
                patient_id=person.patient_id,
                locale=person.locale,
                email_verified=True,
                profile_complete=True,
            )
    for email, role, practitioner, name in DEMO_STAFF:
        if await store.account_by_email(email) is None:
            await create_staff(store, email=email, role=role, password=DEMO_PASSWORD,
                               practitioner_id=practitioner, name=name)


async def prepare_demo(settings: Settings) -> list[str]:
    report = await load_all(settings)
    store = await AccountStore.open(settings.accounts_db)
    try:
        await ensure_demo_accounts(store)
    finally:
        await store.close()
    lines = [report.summary(), "", "Sign in as a demo patient:"]
    lines += [f"  {p.email:<28} {DEMO_PASSWORD}   ({p.name})" for p in DEMO_PATIENTS]
    lines += ["Staff console (/staff):"]
    lines += [f"  {email:<28} {DEMO_PASSWORD}   ({role})" for email, role, _, _ in DEMO_STAFF]
    return lines
