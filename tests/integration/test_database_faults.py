"""The database goes away under load: PostgreSQL restarted (a private cluster), SQLite locked by
another process. The API answers every request with a coded error while the database is gone
(never a hang, never INTERNAL) and recovers by itself."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api
from tests.support.private_pg import private_postgres
from tests.support.servers import api_server

pytestmark = pytest.mark.postgres

ME = "{ me { username } projects { name } }"
REQUEST_TIMEOUT = 20  # a request slower than this counts as a hang


async def _signup(url: str) -> str:
    name = f"u{secrets.token_hex(4)}"
    data = await Api(url)(SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD)
    return data["signup"]["token"]


class Hammer:
    """Authenticated GraphQL queries without pause; records (time, outcome)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.results: list[tuple[float, str]] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
            while not self._stop.is_set():
                try:
                    resp = await http.post(self.url, json={"query": ME}, headers=headers)
                    try:
                        body = resp.json()
                    except ValueError:  # not GraphQL at all (a 500 page): an outcome to report
                        body = {"errors": [{"extensions": {"code": f"HTTP {resp.status_code}"}}]}
                    if body.get("errors"):
                        outcome = (body["errors"][0].get("extensions") or {}).get("code", "NONE")
                    else:
                        outcome = "ok"
                except httpx.TimeoutException:
                    outcome = "hang"
                except httpx.HTTPError as exc:
                    outcome = f"transport {exc!r}"
                self.results.append((time.monotonic(), outcome))
                await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()

    async def more(self, count: int, within: float = 60) -> None:
        """Wait until ``count`` more requests have been answered."""
        wanted = len(self.results) + count
        async with asyncio.timeout(within):
            while len(self.results) < wanted:
                await asyncio.sleep(0.05)

    async def until(self, outcome: str, within: float = 60) -> None:
        async with asyncio.timeout(within):
            while not self.results or self.results[-1][1] != outcome:
                await asyncio.sleep(0.1)


async def test_postgres_restarted_under_load(tmp_path: Path) -> None:
    with private_postgres() as pg, api_server(tmp_path, pg.url) as url:
        hammer = Hammer(url, await _signup(url))
        task = asyncio.create_task(hammer.run())
        try:
            await hammer.until("ok")
            await asyncio.to_thread(pg.stop)
            down = len(hammer.results)
            await hammer.until("UNAVAILABLE", within=30)
            await hammer.more(10)  # a few more requests while it is down
            during = [o for _, o in hammer.results[down:]]
            await asyncio.to_thread(pg.start)
            await hammer.until("ok", within=60)  # recovers by itself
            after = len(hammer.results)
            await hammer.more(20)
        finally:
            hammer.stop()
            await task
        assert set(during) <= {"ok", "UNAVAILABLE"}, sorted(set(during))
        assert {o for _, o in hammer.results[after:]} == {"ok"}
        # And the database is usable for writes again: a new sign-up works.
        assert await _signup(url)


async def test_sqlite_locked_by_another_process_is_retried(tmp_path: Path) -> None:
    with api_server(tmp_path) as url:
        api = Api(url, await _signup(url))
        # Another process holds the write lock for a while (a backup, a sqlite3 shell).
        db = sqlite3.connect(tmp_path / "paastech.sqlite3", timeout=1)
        db.execute("BEGIN EXCLUSIVE")
        release = asyncio.get_running_loop().call_later(1.5, db.rollback)
        try:
            created = await api(
                "mutation($n: String!) { createProject(name: $n) { name } }",
                n=f"l-{secrets.token_hex(3)}",
            )
            assert created["createProject"]["name"].startswith("l-")
        finally:
            release.cancel()
            db.close()
        # Held for longer than the API waits: a coded error (never INTERNAL), nothing written.
        db = sqlite3.connect(tmp_path / "paastech.sqlite3", timeout=1)
        db.execute("BEGIN EXCLUSIVE")
        try:
            err = await api.error(
                "mutation($n: String!) { createProject(name: $n) { name } }", n="l-never"
            )
            assert err.code == "UNAVAILABLE", err.errors
        finally:
            db.rollback()
            db.close()
        projects = await api("{ projects { name } }")
        assert "l-never" not in [p["name"] for p in projects["projects"]]
