"""Test databases: a SQLite file, or a fresh database on the PostgreSQL server of scripts/postgres.sh."""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support.servers import DEFAULT_PG_ADMIN_URL

BACKENDS = ["sqlite", "postgres"]


def pg_admin_url() -> str:
    return os.environ.get("PAASTECH_TEST_PG_URL", DEFAULT_PG_ADMIN_URL)


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    """Yields a database URL; '' means the embedded SQLite default in the data dir."""
    if backend == "sqlite":
        yield ""
        return
    admin = pg_admin_url()
    name = f"paastech_test_{secrets.token_hex(4)}"
    asyncio.run(_pg_exec(admin, f'CREATE DATABASE "{name}"'))
    parts = urlsplit(admin)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        asyncio.run(_pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_exec(url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


class RawDb:
    """Direct SQL on the server's database, for setting up states the API cannot (an expired token)."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir = data_dir
        self.url = database_url

    async def fetch(self, sql: str, *args: Any) -> list[tuple]:
        if self.url:
            rows = await _pg_exec(self.url, sql, *args)
            return [tuple(r) for r in rows]
        # sqlite placeholders are ?; the tests write $1.. as for PostgreSQL.
        for i in range(len(args), 0, -1):
            sql = sql.replace(f"${i}", "?")
        with sqlite3.connect(self.data_dir / "paastech.sqlite3") as conn:
            rows = conn.execute(sql, args).fetchall()
            conn.commit()
            return rows
