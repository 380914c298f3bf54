"""Add-ons (issue 15) through a dockerd restart under the whole platform (API, Pomegranate,
ingress) on a private engine (the shared one is never restarted): rows written before are all
there after, the add-ons are attached with the same config vars, and the API reports them
available again. (tests/integration/test_addon_runtime.py restarts the engine under the add-on
servers alone; tests/integration/test_engine_restart.py under pushed apps.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.addon_servers import addon_containers, create_addon, owner_with_project
from tests.support.platform import platform
from tests.support.polling import within
from tests.support.private_engine import PrivateEngine, private_engine

pytestmark = pytest.mark.docker

ROWS = 120
STATE = """query($p: String!) {
  project(name: $p) { envVars { key value } addons { name } }
  addons { name status attachments { project configVar } server { running } }
}"""


def in_server(engine: PrivateEngine, addon: str, *command: str) -> str | None:
    """A command in the add-on's container (as its own user); None when it cannot run yet."""
    found = addon_containers(addon, ("docker", "-H", engine.url), running=True)
    if len(found) != 1:
        return None
    done = engine.docker("exec", found[0], *command, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def counts(engine: PrivateEngine, pg: str, redis: str) -> tuple[str | None, str | None]:
    return (
        in_server(engine, pg, "psql", "-d", "app", "-tAc", "SELECT count(*) FROM survivors"),
        in_server(engine, redis, "redis-cli", "--no-auth-warning", "SCARD", "survivors"),
    )


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "env": sorted((v["key"], v["value"]) for v in state["project"]["envVars"]),
        "attached": sorted(a["name"] for a in state["project"]["addons"]),
        "addons": sorted((a["name"], str(a["attachments"])) for a in state["addons"]),
    }


async def test_addon_rows_and_attachments_survive_a_dockerd_restart(tmp_path: Path) -> None:
    with private_engine() as engine:
        images = ("paastech/postgres:15", "paastech/redis:7", "paastech/busybox:latest")
        await asyncio.to_thread(engine.load_images, *images)
        with platform(
            tmp_path,
            docker_url=engine.url,
            health_check_timeout_seconds=20,
            reconcile_interval_seconds=2,
            **engine.network_settings,
        ) as plat:
            api, project = await owner_with_project(plat.api_url, "er")
            pg = await create_addon(api, project, "postgres")
            redis = await create_addon(api, project, "redis")
            sql = (
                "CREATE TABLE survivors (n int PRIMARY KEY); "
                f"INSERT INTO survivors SELECT generate_series(1, {ROWS})"
            )
            created = in_server(
                engine, pg, "psql", "-d", "app", "-v", "ON_ERROR_STOP=1", "-qc", sql
            )
            assert created is not None
            members = [str(n) for n in range(ROWS)]
            added = in_server(engine, redis, "redis-cli", "--no-auth-warning", "SADD", "survivors", *members)  # fmt: skip
            assert added == str(ROWS)
            before = await api(STATE, p=project)
            assert {v["key"] for v in before["project"]["envVars"]} == {"DATABASE_URL", "REDIS_URL"}

            await asyncio.to_thread(engine.stop)
            await asyncio.to_thread(engine.start)

            last: dict[str, Any] = {}
            found: tuple[str | None, str | None] = (None, None)
            async with within(120, lambda: f"the add-ons available again: {last}"):
                while True:
                    try:
                        last = await api(STATE, p=project)
                    except Exception as exc:  # the API may answer UNAVAILABLE meanwhile
                        last = {"error": str(exc)}
                    if "error" not in last and all(
                        a["status"] == "available" and (a["server"] or {}).get("running")
                        for a in last["addons"]
                    ):
                        found = counts(engine, pg, redis)
                        if None not in found:  # both servers answer
                            break
                    await asyncio.sleep(0.5)
            assert found == (str(ROWS), str(ROWS))
            assert comparable(last) == comparable(before)
