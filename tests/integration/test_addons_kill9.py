"""Add-ons (issue 15) through a kill -9 of every platform process under runit (`make up`:
the API, Pomegranate, gitd, the ingress and the registry; the web app's line is left out, see
tests/support/supervised.py): rows written before are all there after, the add-on is still
attached with the same config var value, and its server was never re-created or restarted (the
data never stopped being served)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.addon_servers import addon_containers, create_addon, owner_with_project
from tests.support.gqlclient import Api
from tests.support.polling import within
from tests.support.supervised import supervised

pytestmark = pytest.mark.docker

ROWS = 250
STATE = """query($p: String!) {
  project(name: $p) { envVars { key value } addons { name } }
  addons { name status attachments { project configVar } server { running restartCount }
           statusHistory(last: 50) { status } }
}"""


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def container_of(addon: str) -> str:
    [container] = addon_containers(addon)
    return container


def in_server(addon: str, *command: str) -> str:
    """A command in the add-on's container, as its own user (no port is published anywhere)."""
    return docker("exec", container_of(addon), *command)


def pg_count(addon: str) -> int:
    return int(in_server(addon, "psql", "-d", "app", "-tAc", "SELECT count(*) FROM survivors"))


def redis_count(addon: str) -> int:
    return int(in_server(addon, "redis-cli", "--no-auth-warning", "SCARD", "survivors"))


def started_at(addon: str) -> str:
    return docker("inspect", "-f", "{{.Id}} {{.State.StartedAt}}", container_of(addon))


async def _state(api: Api, project: str) -> dict[str, Any]:
    return await api(STATE, p=project)


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    """What must not change across the kills: the env, the attachments, the add-ons' status."""
    return {
        "env": sorted((v["key"], v["value"]) for v in state["project"]["envVars"]),
        "attached": sorted(a["name"] for a in state["project"]["addons"]),
        "addons": [
            (a["name"], a["status"], a["attachments"], a["server"]) for a in state["addons"]
        ],
    }


async def _settled(
    api: Api, project: str, before: dict[str, Any], names: tuple[str, ...]
) -> dict[str, Any]:
    """The state once the API answers it as before the kill (the API may still be starting)."""
    last: dict[str, Any] = {}
    async with within(60, lambda: f"the add-ons as before the kill of {names}: {last}"):
        while True:
            try:
                last = await _state(api, project)
            except Exception as exc:
                last = {"error": str(exc)}
            if "error" not in last and _comparable(last) == _comparable(before):
                return last
            await asyncio.sleep(0.5)


async def test_rows_and_attachments_survive_kill9_of_every_platform_process(
    tmp_path: Path,
) -> None:
    with supervised(tmp_path, health_check_timeout_seconds=20) as sup:
        api, project = await owner_with_project(sup.platform.api_url, "k")
        pg = await create_addon(api, project, "postgres")
        redis = await create_addon(api, project, "redis")
        in_server(pg, "psql", "-d", "app", "-v", "ON_ERROR_STOP=1", "-qc",
                  "CREATE TABLE survivors (n int PRIMARY KEY); "
                  f"INSERT INTO survivors SELECT generate_series(1, {ROWS})")  # fmt: skip
        members = [str(n) for n in range(ROWS)]
        in_server(redis, "redis-cli", "--no-auth-warning", "SADD", "survivors", *members)
        assert (pg_count(pg), redis_count(redis)) == (ROWS, ROWS)
        before = await _state(api, project)
        assert {v["key"] for v in before["project"]["envVars"]} == {"DATABASE_URL", "REDIS_URL"}
        assert all(a["status"] == "available" for a in before["addons"])
        servers = (started_at(pg), started_at(redis))

        # One at a time, then all at once (nothing left running to hold a lock or a stream).
        every = ("api", "pomegranate", "gitd", "ingress", "registry")
        for names in (*((name,) for name in every), every):
            old = {name: sup.kill9(name) for name in names}
            for name in names:
                await asyncio.to_thread(sup.wait_serving, name, old[name], 90)
            after = await _settled(api, project, before, names)
            assert (pg_count(pg), redis_count(redis)) == (ROWS, ROWS), names
            # The servers kept running through it: same containers, never restarted.
            assert (started_at(pg), started_at(redis)) == servers, names
            for addon in after["addons"]:
                assert "down" not in [h["status"] for h in addon["statusHistory"]], addon
