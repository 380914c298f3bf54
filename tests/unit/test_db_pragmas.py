"""SQLite runs with synchronous=NORMAL in WAL mode (a commit without an fsync, issue 17)."""

from __future__ import annotations

from pathlib import Path

from tortoise import Tortoise, connections

from backend.db.config import sqlite_pragmas, tortoise_config
from backend.settings import Settings


def test_sqlite_url_gets_synchronous_normal() -> None:
    assert sqlite_pragmas("sqlite:///d/p.sqlite3") == "sqlite:///d/p.sqlite3?synchronous=NORMAL"
    assert sqlite_pragmas("sqlite:///d/p?x=1") == "sqlite:///d/p?x=1&synchronous=NORMAL"


def test_explicit_setting_and_postgres_unchanged() -> None:
    assert sqlite_pragmas("sqlite:///p?synchronous=FULL") == "sqlite:///p?synchronous=FULL"
    url = "postgres://u:p@db:5432/paastech"
    assert sqlite_pragmas(url) == url


async def test_connection_is_wal_and_normal(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    await Tortoise.init(config=tortoise_config(settings))
    try:
        conn = connections.get("default")
        _, journal = await conn.execute_query("PRAGMA journal_mode")
        _, sync = await conn.execute_query("PRAGMA synchronous")
        assert journal[0][0] == "wal"
        assert sync[0][0] == 1  # NORMAL (FULL is 2)
    finally:
        await Tortoise.close_connections()
