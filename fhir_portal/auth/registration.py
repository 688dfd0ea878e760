"""Self-registration: an account now, a Patient once the email address is confirmed.

The Patient is created when the link in the verification email is opened, so an address
typed by mistake (or by someone else) never leaves a stray Patient in the EHR. A second
registration with an address that already has an account sends that address a note
instead, and the page answers the same either way.
"""

from __future__ import annotations

import dataclasses
import uuid

from fhir_portal.auth.mail import (
    EXISTS_BODY,
    EXISTS_SUBJECT,
    VERIFY_BODY,
    VERIFY_SUBJECT,
    AccountEmail,
    compose,
)
from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from fhir_portal.auth.store import Account, AccountStore
from fhir_portal.fhir import FhirGateway
from fhir_portal.i18n import Translations
from fhir_portal.resources.patients import ProfileData, register_patient
from fhir_portal.settings import Settings

PURPOSE = "verify-email"
LIFETIME_HOURS = 48


class VerificationError(Exception):
    """The confirmation link is unknown, used or expired."""


@dataclasses.dataclass(frozen=True)
class Outgoing:
    to: str
    message: AccountEmail


async def register(
    store: AccountStore, settings: Settings, translations: Translations, *,
    data: ProfileData, email: str, password: str,
) -> Outgoing:
    """Create (or refresh a pending) account and the email to send to ``email``."""
    base = settings.public_url.rstrip("/")
    email = email.strip()
    existing = await store.account_by_email(email)
    pending = existing is not None and not existing.email_verified and existing.patient_id is None
    if existing is not None and not pending:
        await hash_password(password)  # the same work as a new registration (timing)
        message = compose(translations, existing.locale or data.language, settings,
                          EXISTS_SUBJECT, EXISTS_BODY, login_url=f"{base}/login",
                          reset_url=f"{base}/password-reset")
        return Outgoing(email, message)
    password_hash = await hash_password(password)
    display = " ".join(p for p in (data.given, data.family) if p)
    if existing is not None:
        await store.update_account(existing.id, password_hash=password_hash,
                                   display_name=display, locale=data.language or None)
        account_id = existing.id
    else:
        account = await store.create_account(
            email, password_hash=password_hash, roles={Role.PATIENT}, display_name=display,
            locale=data.language or None, email_verified=False, profile_complete=False,
        )
        account_id = account.id
    secret = await store.create_token(
        PURPOSE, lifetime_seconds=LIFETIME_HOURS * 3600, account_id=account_id, email=email,
        data={"profile": dataclasses.asdict(data), "registration": str(uuid.uuid4())},
    )
    message = compose(translations, data.language, settings, VERIFY_SUBJECT, VERIFY_BODY,
                      link=f"{base}/register/verify?token={secret}", hours=LIFETIME_HOURS)
    return Outgoing(email, message)


async def resend(
    store: AccountStore, settings: Settings, translations: Translations, email: str,
    language: str | None,
) -> Outgoing | None:
    """A fresh confirmation link for a registration that is still waiting (else None)."""
    account = await store.account_by_email(email.strip())
    if account is None or account.email_verified or account.patient_id is not None:
        return None
    previous = await store.latest_token(account.id, PURPOSE)
    if previous is None:
        return None
    secret = await store.create_token(
        PURPOSE, lifetime_seconds=LIFETIME_HOURS * 3600, account_id=account.id,
        email=account.email, data=previous.data,
    )
    base = settings.public_url.rstrip("/")
    message = compose(translations, account.locale or language, settings, VERIFY_SUBJECT,
                      VERIFY_BODY, link=f"{base}/register/verify?token={secret}",
                      hours=LIFETIME_HOURS)
    return Outgoing(account.email, message)


async def verify(store: AccountStore, gateway: FhirGateway, secret: str) -> Account:
    """Confirm the email: create the Patient (retry-safe) and open the account."""
    token = await store.token(PURPOSE, secret)
    if token is None or not token.usable or token.account_id is None:
        raise VerificationError()
    account = await store.account(token.account_id)
    if account is None:
        raise VerificationError()
    data = ProfileData(**token.data["profile"])
    patient_id = account.patient_id or await register_patient(
        gateway, data, token.data["registration"]
    )
    if not await store.use_token(token):
        raise VerificationError()
    await store.update_account(account.id, patient_id=patient_id, email_verified=True)
    verified = await store.account(account.id)
    assert verified is not None
    return verified
