"""Activation of an existing Patient: an invitation (link and code) and taking it up.

``fhir-portal invite <Patient id> --email ...`` stores a single-use token with an expiry
and an activation code, sends both by email and prints them. ``/activate`` takes the link
(or the code together with the email it was sent to) and lets the patient choose a
password; the new account is tied to that Patient and nothing else.
"""

from __future__ import annotations

import logging
import secrets

import aiohttp

from fhir_portal.auth.mail import ACTIVATE_BODY, ACTIVATE_SUBJECT, compose, send_account_email
from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from fhir_portal.auth.store import Account, AccountStore, Token
from fhir_portal.fhir import FhirGateway
from fhir_portal.fhir.connection import PooledFhirClient
from fhir_portal.i18n import Translations
from fhir_portal.notify.email import EmailError
from fhir_portal.resources.patients import patient_exists
from fhir_portal.settings import Settings

log = logging.getLogger(__name__)

PURPOSE = "activation"
LIFETIME_DAYS = 7
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 10


class ActivationError(Exception):
    """The link or code is unknown, used, expired, or does not belong to this email."""


class EmailInUse(Exception):
    """Another account already uses this email address."""


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def activation_link(settings: Settings, secret: str) -> str:
    return f"{settings.public_url.rstrip('/')}/activate?token={secret}"


async def create_invitation(
    store: AccountStore, settings: Settings, patient_id: str, email: str
) -> tuple[str, str]:
    """Store a fresh invitation (older ones for the patient are voided): (link, code)."""
    code = new_code()
    secret = await store.create_token(
        PURPOSE, lifetime_seconds=LIFETIME_DAYS * 86400, patient_id=patient_id,
        email=email.strip(), code=normalize_code(code),
    )
    return activation_link(settings, secret), code


async def invite_patient(settings: Settings, patient_id: str, email: str) -> tuple[str, str]:
    """Invite the Patient ``patient_id``: email the link and code, and return them."""
    email = email.strip()
    if "@" not in email or any(ch.isspace() for ch in email):
        raise ValueError(f"not an email address: {email!r}")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.fhir_timeout)) as http:
        gateway = FhirGateway(PooledFhirClient(settings.effective_fhir_base_url, http))
        if not await patient_exists(gateway, patient_id):
            raise ValueError(f"the FHIR server has no active Patient/{patient_id}")
        language = await _patient_language(gateway, patient_id)
    store = await AccountStore.open(settings.accounts_db)
    try:
        link, code = await create_invitation(store, settings, patient_id, email)
    finally:
        await store.close()
    message = compose(
        Translations.load(), language, settings, ACTIVATE_SUBJECT, ACTIVATE_BODY,
        link=link, code=code, days=LIFETIME_DAYS,
        activate_url=f"{settings.public_url.rstrip('/')}/activate",
    )
    try:
        await send_account_email(settings, email, message)
    except EmailError as exc:
        log.warning("the activation email was not sent (%s); give the link or code by hand", exc)
    return link, code


async def _patient_language(gateway: FhirGateway, patient_id: str) -> str | None:
    from fhir_portal.resources.patients import summarize

    return summarize(await gateway.read("Patient", patient_id)).language


async def find_invitation(
    store: AccountStore, *, secret: str | None = None, code: str | None = None,
    email: str | None = None,
) -> Token:
    """The usable invitation of a link, or of a code plus the email it was sent to."""
    token: Token | None = None
    if secret:
        token = await store.token(PURPOSE, secret)
    elif code:
        token = await store.token_by_code(PURPOSE, normalize_code(code))
        if token is not None and (token.email or "").casefold() != (email or "").strip().casefold():
            token = None
    if token is None or not token.usable or not token.patient_id:
        raise ActivationError()
    return token


async def activate(store: AccountStore, token: Token, password: str, locale: str | None) -> Account:
    """Take up an invitation: the account of ``token.email`` for its Patient, with a password."""
    email = (token.email or "").strip()
    existing = await store.account_by_email(email)
    if existing is not None and existing.patient_id not in (None, token.patient_id):
        raise EmailInUse()
    if existing is not None and existing.is_staff_only:
        raise EmailInUse()
    if not await store.use_token(token):
        raise ActivationError()
    password_hash = await hash_password(password)
    if existing is not None:
        await store.update_account(
            existing.id, password_hash=password_hash, patient_id=token.patient_id,
            roles={Role.PATIENT}, email_verified=True, failed_logins=0, locked_until=0.0,
        )
        account = await store.account(existing.id)
        assert account is not None
        return account
    return await store.create_account(
        email, password_hash=password_hash, roles={Role.PATIENT}, patient_id=token.patient_id,
        locale=locale, email_verified=True, profile_complete=False,
    )
