"""Which database errors the API answers with UNAVAILABLE (issue 20) rather than INTERNAL."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from backend.db.config import database_unavailable


def _caused_by(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("query failed") from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.InterfaceError("connection is closed"),
        # A connection broken mid-query during a PostgreSQL shutdown (found under load in CI).
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        ),
        sqlite3.OperationalError("database is locked"),
        _caused_by(asyncpg.InterfaceError("pool is closing")),
    ],
)
def test_unreachable_or_busy_database(exc: BaseException) -> None:
    assert database_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad input"),
        sqlite3.OperationalError("no such table: project"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
    ],
)
def test_other_errors_stay_errors(exc: BaseException) -> None:
    assert not database_unavailable(exc)
