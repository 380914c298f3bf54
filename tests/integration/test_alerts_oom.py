"""The OOM-kill alert end to end (issue 18): an app allocating past its memory limit is killed by
the kernel; the engine's OOM flag travels Pomegranate's runtime event -> the controller -> the
alert, and exactly one oom_kill reaches the project's webhook (a local HTTP receiver)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api
from tests.support.platform import Platform, cleanup_project, fixture, platform, push, tar_dir
from tests.support.polling import within
from tests.support.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.docker

PROCESSES = """query($p: String!) { project(name: $p) {
  applications(first: 5) { number status failureReason }
  processes { processType replica running hostPort } } }"""


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(
        tmp_path_factory.mktemp("platform"),
        health_check_timeout_seconds=12,
        webhook_allow_private=True,  # the receiver listens on 127.0.0.1
        webhook_retry_seconds=0,
    ) as p:
        yield p


async def test_memory_hog_sends_one_oom_alert(plat: Platform) -> None:
    name = f"u{secrets.token_hex(4)}"
    data = await Api(plat.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    api = Api(plat.api_url, data["signup"]["token"])
    project = f"t-{secrets.token_hex(4)}"
    await api("mutation($n: String!) { createProject(name: $n) { name } }", n=project)
    plat.projects.append(project)
    try:
        async with webhook_receiver() as receiver:
            await api(
                "mutation($p: String!, $u: String!) { addWebhook(project: $p, url: $u) { id } }",
                p=project,
                u=receiver.url + "/hook",
            )
            await api(
                "mutation($p: String!) { setResources(project: $p, memoryMb: 64) { name } }",
                p=project,
            )
            assert (
                await push(
                    plat, data["signup"]["client"]["id"], project, tar_dir(fixture("memory-hog"))
                )
            ).ok
            state = (await api(PROCESSES, p=project))["project"]
            (web,) = [p for p in state["processes"] if p["running"]]
            async with httpx.AsyncClient(timeout=30) as http:
                with pytest.raises(httpx.HTTPError):  # killed while answering
                    await http.get(f"http://127.0.0.1:{web['hostPort']}/hog")
            async with within(60, lambda: f"an oom_kill alert; received {receiver.events()}"):
                while "oom_kill" not in receiver.events():
                    await asyncio.sleep(0.2)
            # The release is recorded crashed by then (the alert follows the status change).
            apps = (await api(PROCESSES, p=project))["project"]["applications"]
            assert apps[0]["number"] == 1
            assert "ran out of memory (limit 64 MB)" in apps[0]["failureReason"]
            # The container's "oom" and "die" events, and Docker's restart: still one alert.
            async with within(60, lambda: f"web.1 restarted; received {receiver.events()}"):
                while (await api(PROCESSES, p=project))["project"]["applications"][0][
                    "status"
                ] != "RUNNING":
                    await asyncio.sleep(0.3)
            assert receiver.events().count("oom_kill") == 1
            oom = next(r for r in receiver.received if r["event"] == "oom_kill")
            assert oom["release"] == 1 and oom["project"] == project
            assert oom["text"] == (f"[{project}] Release v1: web.1 ran out of memory (limit 64 MB)")
            assert "release_live" in receiver.events()
    finally:
        cleanup_project(project)
