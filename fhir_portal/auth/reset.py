"""Password reset by an emailed link (time-limited, single use) and changing a password."""

from __future__ import annotations

from fhir_portal.auth.mail import RESET_BODY, RESET_SUBJECT, AccountEmail, compose
from fhir_portal.auth.passwords import hash_password, verify_password
from fhir_portal.auth.store import Account, AccountStore, Token
from fhir_portal.i18n import Translations
from fhir_portal.settings import Settings

PURPOSE = "password-reset"
LIFETIME_MINUTES = 60


class ResetError(Exception):
    """The reset link is unknown, used or expired."""


class WrongPassword(Exception):
    """The current password given to change it is not right."""


async def request_reset(
    store: AccountStore, settings: Settings, translations: Translations, email: str,
    language: str | None,
) -> AccountEmail | None:
    """The reset email for an existing account (None when there is no such account)."""
    account = await store.account_by_email(email.strip())
    if account is None:
        return None
    secret = await store.create_token(
        PURPOSE, lifetime_seconds=LIFETIME_MINUTES * 60, account_id=account.id,
        email=account.email,
    )
    link = f"{settings.public_url.rstrip('/')}/password-reset/{secret}"
    return compose(translations, account.locale or language, settings, RESET_SUBJECT,
                   RESET_BODY, link=link, minutes=LIFETIME_MINUTES)


async def reset_token(store: AccountStore, secret: str) -> Token:
    token = await store.token(PURPOSE, secret)
    if token is None or not token.usable or token.account_id is None:
        raise ResetError()
    return token


async def reset_password(store: AccountStore, token: Token, password: str) -> Account:
    """Set the new password, lift any lock, and end every session of the account."""
    if token.account_id is None or not await store.use_token(token):
        raise ResetError()
    await store.update_account(
        token.account_id, password_hash=await hash_password(password), failed_logins=0,
        locked_until=0.0,
    )
    await store.void_tokens(token.account_id, PURPOSE)
    await store.delete_sessions_of(token.account_id)
    account = await store.account(token.account_id)
    if account is None:
        raise ResetError()
    return account


async def change_password(
    store: AccountStore, account: Account, current: str, new: str, keep_session: str | None
) -> None:
    """Change a password knowing the current one; other sessions are ended."""
    if not await verify_password(account.password_hash, current):
        raise WrongPassword()
    await store.update_account(account.id, password_hash=await hash_password(new))
    await store.void_tokens(account.id, PURPOSE)
    await store.delete_sessions_of(account.id, except_hash=keep_session)
