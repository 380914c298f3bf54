"""The engine restarted under the platform: every app answers through the ingress again.

Runs on a private dockerd (tests/support/private_engine.py): the shared engine is never restarted.
Without live-restore (the hard case): the engine stops every container; when it is back the
ingress and Pomegranate reconnect, resync, and the restarted containers are probed and routed.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api
from tests.support.platform import fixture, platform, push, tar_dir
from tests.support.private_engine import private_engine

pytestmark = pytest.mark.docker

STATE = """query($p: String!) { project(name: $p) {
  liveApplication { number status } processes { running } } }"""


async def _answers(http: httpx.AsyncClient, port: int, project: str) -> bool:
    try:
        resp = await http.get(f"http://127.0.0.1:{port}/", headers={"Host": f"{project}.localhost"})
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


@pytest.mark.parametrize("live_restore", [False, True], ids=["plain", "live-restore"])
async def test_every_app_answers_again_after_a_dockerd_restart(
    tmp_path: Path, live_restore: bool
) -> None:
    with private_engine(live_restore=live_restore) as engine:
        engine.load_images("paastech/busybox:latest")
        with platform(
            tmp_path,
            docker_url=engine.url,
            health_check_timeout_seconds=60,
            **engine.network_settings,
        ) as plat:
            name = f"u{secrets.token_hex(4)}"
            data = await Api(plat.api_url)(
                SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
            )
            api = Api(plat.api_url, data["signup"]["token"])
            projects = [f"e-{secrets.token_hex(3)}" for _ in range(2)]
            for project in projects:
                await api("mutation($n: String!) { createProject(name: $n) { name } }", n=project)
                source = tar_dir(fixture("static"))
                outcome = await push(plat, data["signup"]["client"]["id"], project, source)
                assert outcome.ok, outcome.reason
            async with httpx.AsyncClient(timeout=3) as http:
                for project in projects:
                    async with asyncio.timeout(20):
                        while not await _answers(http, plat.ingress_port, project):
                            await asyncio.sleep(0.2)

                await asyncio.to_thread(engine.stop)
                await asyncio.to_thread(engine.start)
                back = time.monotonic()
                recovered: dict[str, float] = {}
                async with asyncio.timeout(90):
                    while len(recovered) < len(projects):
                        for project in projects:
                            if project not in recovered and await _answers(
                                http, plat.ingress_port, project
                            ):
                                recovered[project] = time.monotonic() - back
                        await asyncio.sleep(0.2)
            print(f"dockerd restart (live-restore={live_restore}): apps back after {recovered}")
            for project in projects:
                state = (await api(STATE, p=project))["project"]
                assert state["liveApplication"] == {"number": 1, "status": "RUNNING"}
                assert [p["running"] for p in state["processes"]] == [True]
