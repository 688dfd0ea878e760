"""``fhir-portal staff add``: accounts for agents, clinicians and admins."""

from __future__ import annotations

from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.policy import check_password
from fhir_portal.auth.roles import Role
from fhir_portal.auth.store import Account, AccountStore
from fhir_portal.settings import Settings


async def create_staff(
    store: AccountStore,
    *,
    email: str,
    role: str,
    password: str,
    practitioner_id: str | None = None,
    name: str = "",
) -> Account:
    kind = Role(role)
    if kind == Role.PATIENT:
        raise ValueError("staff accounts cannot have the patient role")
    if kind == Role.CLINICIAN and not practitioner_id:
        raise ValueError("a clinician account needs --practitioner <Practitioner id>")
    problem = check_password(password)
    if problem:
        raise ValueError(problem)
    if await store.account_by_email(email):
        raise ValueError(f"an account with the email {email} already exists")
    return await store.create_account(
        email,
        password_hash=await hash_password(password),
        roles={kind},
        display_name=name or email,
        practitioner_id=practitioner_id,
        email_verified=True,
        profile_complete=True,
    )


async def add_staff(settings: Settings, **kwargs: str | None) -> Account:
    store = await AccountStore.open(settings.accounts_db)
    try:
        return await create_staff(store, **kwargs)  # type: ignore[arg-type]
    finally:
        await store.close()
