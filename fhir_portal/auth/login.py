"""Sign in with email and password, with a lock that grows after repeated failures.

Unknown email, wrong password and a locked account all give the same answer to the
caller, so the form cannot be used to find out who has an account.
"""

from __future__ import annotations

import time

from fhir_portal.auth.passwords import verify_password
from fhir_portal.auth.store import Account, AccountStore

FREE_ATTEMPTS = 5
BASE_LOCK_SECONDS = 30.0
MAX_LOCK_SECONDS = 3600.0


class LoginRefused(Exception):
    """Wrong email or password (deliberately not saying which), or a locked account."""

    def __init__(self, account: Account | None = None) -> None:
        super().__init__("sign-in refused")
        self.account = account


class EmailNotVerified(Exception):
    def __init__(self, account: Account) -> None:
        super().__init__("email not verified")
        self.account = account


def lock_seconds(failures: int) -> float:
    """No lock for the first attempts, then 30 s doubling per failure, capped at an hour."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    return min(BASE_LOCK_SECONDS * 2 ** (failures - FREE_ATTEMPTS), MAX_LOCK_SECONDS)


async def authenticate(store: AccountStore, email: str, password: str) -> Account:
    account = await store.account_by_email(email)
    now = time.time()
    if account is not None and account.locked_until > now:
        await verify_password(None, password)  # same cost as a real attempt
        raise LoginRefused(account)
    ok = await verify_password(account.password_hash if account else None, password)
    if account is None:
        raise LoginRefused(None)
    if not ok:
        failures = account.failed_logins + 1
        lock = lock_seconds(failures)
        await store.update_account(
            account.id, failed_logins=failures, locked_until=now + lock if lock else 0.0
        )
        raise LoginRefused(account)
    if account.failed_logins or account.locked_until:
        await store.update_account(account.id, failed_logins=0, locked_until=0.0)
    if not account.email_verified:
        raise EmailNotVerified(account)
    return account
