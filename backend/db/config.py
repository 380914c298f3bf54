"""Tortoise ORM configuration, built from the settings."""

from __future__ import annotations

import errno
import sqlite3
from typing import Any

from tortoise import Tortoise

from backend.settings import Settings, get_settings


def tortoise_config(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    return {
        "connections": {"default": sqlite_pragmas(settings.db_url)},
        "apps": {
            "models": {
                "models": ["backend.db.models"],
                "default_connection": "default",
                "migrations": "backend.db.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def sqlite_pragmas(url: str) -> str:
    """SQLite in WAL mode (Tortoise's default) with synchronous=NORMAL unless the URL says
    otherwise: a commit no longer waits for an fsync of the WAL (p99 50 ms, up to 130 ms on the
    loaded bench machine, against 0.1 ms; every build log line is a commit, issue 17). WAL
    with NORMAL stays consistent after a crash of the process; only an OS crash or power loss
    can lose the last commits. PostgreSQL URLs pass unchanged."""
    if not url.startswith("sqlite://") or "synchronous=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}synchronous=NORMAL"


# For the `tortoise` command line (makemigrations): `tortoise -c backend.db.config.TORTOISE_ORM`.
TORTOISE_ORM = tortoise_config()


def _ensure_data_dir(settings: Settings | None) -> None:
    (settings or get_settings()).data_dir.mkdir(parents=True, exist_ok=True)


async def init_db(settings: Settings | None = None) -> None:
    _ensure_data_dir(settings)
    # Global fallback: uvicorn runs the lifespan in another task than the requests; this is
    # what Tortoise's own Starlette/FastAPI integration does.
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)


async def migrate(settings: Settings | None = None) -> None:
    """Apply every pending migration (`python -m backend migrate`: `make up` and the tests)."""
    from tortoise.migrations.api import migrate as run_migrations

    _ensure_data_dir(settings)
    await run_migrations(config=tortoise_config(settings))
    await Tortoise.close_connections()


async def close_db() -> None:
    await Tortoise.close_connections()


# Errors that mean "the database is not reachable right now" (PostgreSQL restarting or gone,
# SQLite locked by another process past its busy timeout), not a bug: the API answers them with
# the code UNAVAILABLE instead of INTERNAL (issue 20).
_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT}
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database is unreachable or busy."""
    import asyncpg
    from tortoise.exceptions import DBConnectionError, OperationalError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            DBConnectionError
            | ConnectionError
            | TimeoutError
            | asyncpg.PostgresConnectionError
            | asyncpg.exceptions.OperatorInterventionError  # shutting down, starting up
            | asyncpg.InterfaceError  # "connection is closed", "pool is closing"
            # A connection broken mid-query while the server shuts down: "cannot switch to
            # state N; another operation is in progress" (seen as a 500 under load).
            | asyncpg.exceptions.InternalClientError,
        ):
            return True
        if isinstance(current, OSError) and current.errno in _UNREACHABLE_ERRNOS:
            return True
        busy = any(text in str(current).lower() for text in _SQLITE_BUSY)
        if busy and isinstance(current, sqlite3.OperationalError | OperationalError):
            return True
        current = current.__cause__ or current.__context__
    return False


DATABASE_UNAVAILABLE_MESSAGE = "the database is not reachable right now; try again shortly"
