"""Small named watermarks in the accounts SQLite database (e.g. the inbox sweep's).

A watermark is an opaque string (here a FHIR instant) per name. It lives in its own
table of the accounts database, so it survives restarts: a sweep after downtime starts
where the last one stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiosqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS watermarks (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


class Watermarks:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path | str) -> Watermarks:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), timeout=30)
        await db.execute("PRAGMA busy_timeout = 30000")
        await db.executescript(SCHEMA)
        await db.commit()
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def get(self, name: str) -> str | None:
        async with self._db.execute("SELECT value FROM watermarks WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set(self, name: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO watermarks (name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (name, value, time.time()),
        )
        await self._db.commit()
