"""Accounts and server-side sessions in SQLite (no clinical data lives here).

Session ids are random 256-bit tokens; only their SHA-256 is stored, so a copy of the
database does not hand out live sessions.
"""

from __future__ import annotations

import hashlib
import json
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

    async def accounts_for_patient(self, patient_id: str) -> list[Account]:
        async with self.db.execute(
            "SELECT * FROM accounts WHERE patient_id = ?", (patient_id,)
        ) as cur:
            rows = await cur.fetchall()
        return [_account(row) for row in rows]

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
        session.last_seen = time.time()
        await self.db.execute(
            "UPDATE sessions SET last_seen = ?, data = ? WHERE id_hash = ?",
            (session.last_seen, json.dumps(session.data), session.id_hash),
        )
        await self.db.commit()

    async def delete_session(self, id_hash: str) -> None:
        await self.db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))
        await self.db.commit()

    async def delete_sessions_of(self, account_id: int) -> int:
        cursor = await self.db.execute("DELETE FROM sessions WHERE account_id = ?", (account_id,))
        await self.db.commit()
        return cursor.rowcount
