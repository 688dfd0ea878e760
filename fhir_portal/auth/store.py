"""Accounts and server-side sessions in SQLite (no clinical data lives here).

Session ids are random 256-bit tokens; only their SHA-256 is stored, so a copy of the
database does not hand out live sessions.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from fhir_portal.auth.roles import Principal, Role

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT,
    display_name TEXT NOT NULL DEFAULT '',
    roles TEXT NOT NULL DEFAULT '',
    patient_id TEXT,
    practitioner_id TEXT,
    locale TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    profile_complete INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_patient ON accounts(patient_id);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions(account_id);
-- single-use, time-limited links and codes (email verification, activation, reset);
-- only SHA-256 digests of the secrets are kept
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    code_hash TEXT UNIQUE,
    purpose TEXT NOT NULL,
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    patient_id TEXT,
    email TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE INDEX IF NOT EXISTS tokens_account ON tokens(account_id, purpose);
-- an external sign-in (OpenID Connect issuer + subject) linked to one account
CREATE TABLE IF NOT EXISTS external_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    email TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX IF NOT EXISTS external_identities_account ON external_identities(account_id);
-- short-lived pre-authentication records of an OIDC / SMART redirect (state, nonce, PKCE)
CREATE TABLE IF NOT EXISTS auth_states (
    state_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    expires_at REAL NOT NULL
);
"""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Account:
    id: int
    email: str
    password_hash: str | None
    display_name: str
    roles: frozenset[Role]
    patient_id: str | None
    practitioner_id: str | None
    locale: str | None
    email_verified: bool
    profile_complete: bool
    failed_logins: int
    locked_until: float

    @property
    def is_staff_only(self) -> bool:
        return bool(self.roles) and Role.PATIENT not in self.roles

    def principal(self) -> Principal:
        return Principal(
            account_id=self.id,
            email=self.email,
            display_name=self.display_name or self.email,
            roles=self.roles,
            patient_id=self.patient_id,
            practitioner_id=self.practitioner_id,
            locale=self.locale,
            profile_complete=self.profile_complete,
        )


@dataclass
class Token:
    """A stored single-use token (the secret itself is never stored)."""

    token_hash: str
    purpose: str
    account_id: int | None
    patient_id: str | None
    email: str | None
    data: dict[str, Any]
    created_at: float
    expires_at: float
    used_at: float | None

    @property
    def usable(self) -> bool:
        return self.used_at is None and self.expires_at > time.time()


@dataclass(frozen=True)
class ExternalIdentity:
    issuer: str
    subject: str
    account_id: int
    email: str | None
    created_at: float


def _token(row: aiosqlite.Row) -> Token:
    return Token(
        row["token_hash"], row["purpose"], row["account_id"], row["patient_id"], row["email"],
        json.loads(row["data"]), row["created_at"], row["expires_at"], row["used_at"],
    )


def digest(secret: str) -> str:
    """The stored form of a token, code or state."""
    return _digest(secret)


_SESSION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass
class Session:
    """A server-side session; ``token`` is only known right after it was created."""

    id_hash: str
    account_id: int | None
    created_at: float
    last_seen: float
    data: dict[str, Any] = field(default_factory=dict)
    token: str | None = None


def _account(row: aiosqlite.Row) -> Account:
    return Account(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        display_name=row["display_name"],
        roles=frozenset(Role(r) for r in row["roles"].split(",") if r),
        patient_id=row["patient_id"],
        practitioner_id=row["practitioner_id"],
        locale=row["locale"],
        email_verified=bool(row["email_verified"]),
        profile_complete=bool(row["profile_complete"]),
        failed_logins=row["failed_logins"],
        locked_until=row["locked_until"],
    )


def _identity(row: aiosqlite.Row) -> ExternalIdentity:
    return ExternalIdentity(
        row["issuer"], row["subject"], row["account_id"], row["email"], row["created_at"]
    )


class AccountStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: Path | str) -> AccountStore:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path))
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.executescript(SCHEMA)
        await db.commit()
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    # -- accounts -------------------------------------------------------------------
    async def create_account(
        self,
        email: str,
        *,
        password_hash: str | None,
        roles: set[Role] | frozenset[Role],
        display_name: str = "",
        patient_id: str | None = None,
        practitioner_id: str | None = None,
        locale: str | None = None,
        email_verified: bool = False,
        profile_complete: bool = False,
    ) -> Account:
        cursor = await self.db.execute(
            "INSERT INTO accounts (email, password_hash, display_name, roles, patient_id,"
            " practitioner_id, locale, email_verified, profile_complete, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                email.strip(),
                password_hash,
                display_name,
                ",".join(sorted(r.value for r in roles)),
                patient_id,
                practitioner_id,
                locale,
                int(email_verified),
                int(profile_complete),
                time.time(),
            ),
        )
        await self.db.commit()
        account = await self.account(int(cursor.lastrowid or 0))
        assert account is not None
        return account

    async def account(self, account_id: int) -> Account | None:
        async with self.db.execute("SELECT * FROM accounts WHERE id = ?", (account_id,)) as cur:
            row = await cur.fetchone()
        return _account(row) if row else None

    async def account_by_email(self, email: str) -> Account | None:
        async with self.db.execute(
            "SELECT * FROM accounts WHERE email = ?", (email.strip(),)
        ) as cur:
            row = await cur.fetchone()
        return _account(row) if row else None

    async def update_account(self, account_id: int, **values: Any) -> None:
        allowed = {
            "password_hash", "display_name", "roles", "patient_id", "practitioner_id",
            "locale", "email_verified", "profile_complete", "failed_logins", "locked_until",
            "email",
        }
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown account fields: {sorted(unknown)}")
        if "roles" in values:
            values["roles"] = ",".join(sorted(Role(r).value for r in values["roles"]))
        assignments = ", ".join(f"{name} = ?" for name in values)
        await self.db.execute(
            f"UPDATE accounts SET {assignments} WHERE id = ?",  # noqa: S608 - names checked
            (*values.values(), account_id),
        )
        await self.db.commit()

    # -- sessions -------------------------------------------------------------------
    async def create_session(self, account_id: int | None, data: dict[str, Any] | None = None) -> Session:
        token = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(_digest(token), account_id, now, now, dict(data or {}), token)
        await self.db.execute(
            "INSERT INTO sessions (id_hash, account_id, created_at, last_seen, data)"
            " VALUES (?, ?, ?, ?, ?)",
            (session.id_hash, account_id, now, now, json.dumps(session.data)),
        )
        await self.db.commit()
        return session

    async def session(self, token: str) -> Session | None:
        async with self.db.execute(
            "SELECT * FROM sessions WHERE id_hash = ?", (_digest(token),)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return Session(
            row["id_hash"], row["account_id"], row["created_at"], row["last_seen"],
            json.loads(row["data"]),
        )

    async def touch_session(self, session: Session) -> None:
        """Note activity (only ``last_seen``: data is written key by key, so a request
        holding an old copy never overwrites what another request saved meanwhile)."""
        session.last_seen = time.time()
        await self.db.execute(
            "UPDATE sessions SET last_seen = ? WHERE id_hash = ?",
            (session.last_seen, session.id_hash),
        )
        await self.db.commit()

    async def set_session_value(
        self, session: Session, path: str | tuple[str, ...], value: Any
    ) -> None:
        """Set (or with ``None`` remove) one value of the session's data, in the database
        and in ``session``; other keys stay as the database has them."""
        keys = (path,) if isinstance(path, str) else path
        if not keys or not all(_SESSION_KEY.match(k) for k in keys):
            raise ValueError("session data keys are plain names")
        json_path = "$." + ".".join(keys)
        if value is None:
            await self.db.execute(
                "UPDATE sessions SET data = json_remove(data, ?) WHERE id_hash = ?",
                (json_path, session.id_hash),
            )
        else:
            await self.db.execute(
                "UPDATE sessions SET data = json_set(data, ?, json(?)) WHERE id_hash = ?",
                (json_path, json.dumps(value), session.id_hash),
            )
        await self.db.commit()
        target = session.data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value

    async def delete_session(self, id_hash: str) -> None:
        await self.db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))
        await self.db.commit()

    async def delete_sessions_of(self, account_id: int, *, except_hash: str | None = None) -> int:
        """End every session of an account (all but ``except_hash`` when given)."""
        cursor = await self.db.execute(
            "DELETE FROM sessions WHERE account_id = ? AND id_hash != ?",
            (account_id, except_hash or ""),
        )
        await self.db.commit()
        return cursor.rowcount

    async def count_sessions_of(self, account_id: int) -> int:
        async with self.db.execute(
            "SELECT COUNT(*) FROM sessions WHERE account_id = ?", (account_id,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- single-use tokens -----------------------------------------------------------
    async def create_token(
        self,
        purpose: str,
        *,
        lifetime_seconds: float,
        account_id: int | None = None,
        patient_id: str | None = None,
        email: str | None = None,
        data: dict[str, Any] | None = None,
        code: str | None = None,
        replace_previous: bool = True,
    ) -> str:
        """Store a new token and return its secret (for the link); older ones are voided."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        if replace_previous and (account_id is not None or patient_id is not None):
            await self.db.execute(
                "UPDATE tokens SET used_at = ? WHERE purpose = ? AND used_at IS NULL AND"
                " (account_id = ? OR (account_id IS NULL AND patient_id = ?))",
                (now, purpose, account_id, patient_id),
            )
        await self.db.execute(
            "INSERT INTO tokens (token_hash, code_hash, purpose, account_id, patient_id, email,"
            " data, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _digest(secret), _digest(code.upper()) if code else None, purpose, account_id,
                patient_id, email, json.dumps(data or {}), now, now + lifetime_seconds,
            ),
        )
        await self.db.execute("DELETE FROM tokens WHERE expires_at < ?", (now - 7 * 86400,))
        await self.db.commit()
        return secret

    async def token(self, purpose: str, secret: str) -> Token | None:
        async with self.db.execute(
            "SELECT * FROM tokens WHERE token_hash = ? AND purpose = ?", (_digest(secret), purpose)
        ) as cur:
            row = await cur.fetchone()
        return _token(row) if row else None

    async def token_by_code(self, purpose: str, code: str) -> Token | None:
        async with self.db.execute(
            "SELECT * FROM tokens WHERE code_hash = ? AND purpose = ?",
            (_digest(code.strip().upper()), purpose),
        ) as cur:
            row = await cur.fetchone()
        return _token(row) if row else None

    async def latest_token(self, account_id: int, purpose: str) -> Token | None:
        async with self.db.execute(
            "SELECT * FROM tokens WHERE account_id = ? AND purpose = ?"
            " ORDER BY created_at DESC LIMIT 1", (account_id, purpose),
        ) as cur:
            row = await cur.fetchone()
        return _token(row) if row else None

    async def use_token(self, token: Token) -> bool:
        """Mark a token used; False when it was used (or expired) already: single use."""
        cursor = await self.db.execute(
            "UPDATE tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"
            " AND expires_at > ?",
            (time.time(), token.token_hash, time.time()),
        )
        await self.db.commit()
        if cursor.rowcount == 1:
            token.used_at = time.time()
            return True
        return False

    async def void_tokens(self, account_id: int, purpose: str) -> None:
        await self.db.execute(
            "UPDATE tokens SET used_at = ? WHERE account_id = ? AND purpose = ? AND used_at IS NULL",
            (time.time(), account_id, purpose),
        )
        await self.db.commit()

    # -- external identities -----------------------------------------------------------
    async def link_identity(
        self, issuer: str, subject: str, account_id: int, email: str | None = None
    ) -> None:
        await self.db.execute(
            "INSERT INTO external_identities (issuer, subject, account_id, email, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (issuer, subject, account_id, email, time.time()),
        )
        await self.db.commit()

    async def identity(self, issuer: str, subject: str) -> ExternalIdentity | None:
        async with self.db.execute(
            "SELECT * FROM external_identities WHERE issuer = ? AND subject = ?",
            (issuer, subject),
        ) as cur:
            row = await cur.fetchone()
        return _identity(row) if row else None

    async def identities_of(self, account_id: int) -> list[ExternalIdentity]:
        async with self.db.execute(
            "SELECT * FROM external_identities WHERE account_id = ? ORDER BY created_at",
            (account_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [_identity(row) for row in rows]

    async def unlink_identity(self, account_id: int, issuer: str, subject: str) -> bool:
        cursor = await self.db.execute(
            "DELETE FROM external_identities WHERE account_id = ? AND issuer = ? AND subject = ?",
            (account_id, issuer, subject),
        )
        await self.db.commit()
        return cursor.rowcount == 1

    # -- pre-authentication state (OIDC / SMART redirects) ----------------------------
    async def save_auth_state(
        self, state: str, kind: str, browser: str, data: dict[str, Any], lifetime: float = 600
    ) -> None:
        now = time.time()
        await self.db.execute("DELETE FROM auth_states WHERE expires_at < ?", (now,))
        await self.db.execute(
            "INSERT INTO auth_states (state_hash, kind, browser_hash, data, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (_digest(state), kind, _digest(browser), json.dumps(data), now + lifetime),
        )
        await self.db.commit()

    async def take_auth_state(self, state: str, kind: str, browser: str) -> dict[str, Any] | None:
        """The data saved with ``state`` (once: it is deleted), if this browser started it."""
        async with self.db.execute(
            "SELECT * FROM auth_states WHERE state_hash = ? AND kind = ?", (_digest(state), kind)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        await self.db.execute("DELETE FROM auth_states WHERE state_hash = ?", (row["state_hash"],))
        await self.db.commit()
        if row["expires_at"] < time.time():
            return None
        if not secrets.compare_digest(row["browser_hash"], _digest(browser)):
            return None
        data: dict[str, Any] = json.loads(row["data"])
        return data
