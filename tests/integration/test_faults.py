"""Fault injection on the platform as `make up` runs it (supervised, tests/support/supervised.py):
kill -9 of the API, Pomegranate, gitd or the ingress while a release is queued, building,
deploying, switching, rolling back or scaling. Each fault once (bounded).

After each fault, the invariants (``assert_settled``): exactly one live release, no release left
in a non-final state, no container of any other release, the push got an answer, and the app
answered through the ingress throughout (except while the ingress itself was down).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.test_gitd import Gitd, User, make_user, remote_lines
from tests.support.platform import docker_containers
from tests.support.supervised import Load, Supervised, supervised

pytestmark = pytest.mark.docker

FINAL = {"running", "superseded", "failed", "crashed", "stopped"}
STATE = """query($p: String!) { project(name: $p) {
  liveApplication { number status }
  applications(first: 30) { number status cause failureReason } } }"""


@pytest.fixture(scope="module")
def sup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervised]:
    with supervised(tmp_path_factory.mktemp("faults"), health_check_timeout_seconds=20) as platform:
        yield platform


@pytest.fixture(scope="module")
def gitd(sup: Supervised) -> Gitd:
    return Gitd(sup.ports["gitd"], sup.platform.data_dir, sup.platform.data_dir / "logs")


@pytest.fixture
async def user(
    sup: Supervised, gitd: Gitd, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[User]:
    yield await make_user(sup.platform, gitd, tmp_path_factory.mktemp("homes"))


def slow_dockerfile(seconds: int = 6) -> str:
    # A fresh token each time: the builder's cache must not skip the slow step.
    return (
        "FROM paastech/python:bookworm\nWORKDIR /app\nCOPY app.py /app/app.py\n"
        f"RUN echo {secrets.token_hex(4)} && sleep {seconds}\n"
        'ENV PORT=5000\nEXPOSE 5000\nCMD ["python3", "app.py"]\n'
    )


async def live_project(user: User, sup: Supervised) -> tuple[str, Path, Load]:
    """A project with v1 live and a client requesting it through the ingress."""
    project = await user.project()
    work = user.workdir("dockerfile", project)
    result = await asyncio.to_thread(user.push, work)
    assert result.returncode == 0, result.stderr
    load = Load(sup.ports["ingress"], project)
    load.start()
    async with asyncio.timeout(20):
        while not any(ok for _, ok in load.results):
            await asyncio.sleep(0.1)
    return project, work, load


async def wait_status(user: User, project: str, number: int, wanted: set[str]) -> None:
    async with asyncio.timeout(120):
        while True:
            apps = (await _state(user, project))["applications"]
            if any(a["number"] == number and a["status"].lower() in wanted for a in apps):
                return
            await asyncio.sleep(0.2)


async def _state(user: User, project: str) -> dict:
    # The API may be restarting: retry until it answers.
    async with asyncio.timeout(60):
        while True:
            try:
                return (await user.api(STATE, p=project))["project"]
            except Exception:
                await asyncio.sleep(0.3)


async def assert_settled(user: User, project: str) -> dict:
    """Wait until no release is in progress, then check the invariants."""
    async with asyncio.timeout(150):
        while True:
            state = await _state(user, project)
            if all(a["status"].lower() in FINAL for a in state["applications"]):
                break
            await asyncio.sleep(0.3)
    statuses = [a["status"].lower() for a in state["applications"]]
    assert statuses.count("running") == 1, state
    live = state["liveApplication"]["number"]
    for app in state["applications"]:
        if app["status"].lower() == "failed":
            assert app["failureReason"], app  # failed with the reason
    # No orphan: the project's containers (as the docker CLI lists them) are the live release's.
    async with asyncio.timeout(60):
        while True:
            rows = docker_containers(project)
            if rows and all(r["application"] == str(live) for r in rows):
                break
            await asyncio.sleep(0.5)
    assert all(r["state"] == "running" for r in rows), rows
    # No orphan image: every tag of the project's repository is one of its releases.
    numbers = {str(a["number"]) for a in state["applications"]}
    tags = subprocess.run(
        ["docker", "images", "--format", "{{.Tag}}", f"paastech/app-{project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert set(tags) <= numbers, (tags, numbers)
    return state


async def kill_when(sup: Supervised, name: str, user: User, project: str, n: int, status: str):
    await wait_status(user, project, n, {status})
    old = sup.kill9(name)
    await asyncio.to_thread(sup.wait_serving, name, old, 60)


async def test_api_killed_while_building_resumes_and_the_push_follows(
    sup: Supervised, user: User
) -> None:
    project, work, load = await live_project(user, sup)
    user.commit(work, {"Dockerfile": slow_dockerfile()})
    push = asyncio.create_task(asyncio.to_thread(user.push, work))
    try:
        mark = len(load.results)
        await kill_when(sup, "api", user, project, 2, "building")
        result = await push
        await asyncio.sleep(0.5)
        assert load.failures_since(mark) == []
    finally:
        await load.stop()
    lines = remote_lines(result.stderr)
    assert result.returncode == 0, result.stderr
    assert any("The platform restarted during v2; reconnecting" in line for line in lines)
    assert any("this release resumes" in line for line in lines)
    state = await assert_settled(user, project)
    assert state["liveApplication"]["number"] == 2


async def test_api_killed_with_a_queued_release_resumes_the_newest(
    sup: Supervised, user: User
) -> None:
    project, work, load = await live_project(user, sup)
    user.commit(work, {"Dockerfile": slow_dockerfile()})
    push = asyncio.create_task(asyncio.to_thread(user.push, work))
    try:
        await wait_status(user, project, 2, {"building"})
        # A config change queues v3 (scale) behind the build of v2.
        await user.api(
            'mutation($p: String!) { scale(project: $p, processType: "web", replicas: 2) '
            "{ project { name } } }",
            p=project,
        )
        mark = len(load.results)
        await kill_when(sup, "api", user, project, 3, "queued")
        result = await push
        state = await assert_settled(user, project)
        await asyncio.sleep(0.5)
        assert load.failures_since(mark) == []
    finally:
        await load.stop()
    # v2 lost to the newer v3 (the push is told), v3 was resumed and runs 2 replicas.
    assert result.returncode != 0
    assert "Push rejected: v2" in result.stderr
    apps = {a["number"]: a for a in state["applications"]}
    assert apps[2]["status"] == "FAILED" and "replaced by v3" in apps[2]["failureReason"]
    assert state["liveApplication"]["number"] == 3
    assert len(docker_containers(project)) == 2


async def test_api_killed_while_deploying_a_rollback(sup: Supervised, user: User) -> None:
    project, work, load = await live_project(user, sup)
    user.commit(work, {"app.py": (work / "app.py").read_text() + "\n# v2\n"})
    assert (await asyncio.to_thread(user.push, work)).returncode == 0
    try:
        await user.api("mutation($p: String!) { rollback(project: $p) { number } }", p=project)
        mark = len(load.results)
        await kill_when(sup, "api", user, project, 3, "deploying")
        state = await assert_settled(user, project)
        await asyncio.sleep(0.5)
        assert load.failures_since(mark) == []
    finally:
        await load.stop()
    assert state["liveApplication"]["number"] == 3


async def test_pomegranate_killed_while_building(sup: Supervised, user: User) -> None:
    project, work, load = await live_project(user, sup)
    user.commit(work, {"Dockerfile": slow_dockerfile()})
    push = asyncio.create_task(asyncio.to_thread(user.push, work))
    try:
        mark = len(load.results)
        await kill_when(sup, "pomegranate", user, project, 2, "building")
        result = await push
        state = await assert_settled(user, project)
        await asyncio.sleep(0.5)
        assert load.failures_since(mark) == []
    finally:
        await load.stop()
    # The build died with Pomegranate: v2 failed with the reason, the push was rejected, v1 serves.
    assert result.returncode != 0 and "Push rejected: v2" in result.stderr
    assert state["liveApplication"]["number"] == 1
    # A push after it works.
    user.commit(work, {"app.py": (work / "app.py").read_text() + "\n# again\n"})
    assert (await asyncio.to_thread(user.push, work)).returncode == 0


async def test_gitd_killed_during_a_push(sup: Supervised, user: User) -> None:
    project, work, load = await live_project(user, sup)
    user.commit(work, {"Dockerfile": slow_dockerfile()})
    push = asyncio.create_task(asyncio.to_thread(user.push, work))
    try:
        mark = len(load.results)
        await kill_when(sup, "gitd", user, project, 2, "building")
        result = await push
        state = await assert_settled(user, project)
        assert load.failures_since(mark) == []
    finally:
        await load.stop()
    # The pusher's connection died with gitd: git says so (never a hang). The release itself
    # was accepted by the API before, and ran to its end.
    assert result.returncode != 0
    assert state["liveApplication"]["number"] in (1, 2)
    # gitd serves again: the next push goes through it.
    user.commit(work, {"app.py": (work / "app.py").read_text() + "\n# after gitd\n"})
    again = await asyncio.to_thread(user.push, work)
    assert again.returncode == 0, again.stderr


async def test_ingress_killed_while_switching(sup: Supervised, user: User) -> None:
    project, work, load = await live_project(user, sup)
    user.commit(work, {"app.py": (work / "app.py").read_text() + "\n# v2\n"})
    push = asyncio.create_task(asyncio.to_thread(user.push, work))
    try:
        await kill_when(sup, "ingress", user, project, 2, "deploying")
        result = await push
        await assert_settled(user, project)
        async with asyncio.timeout(30):
            while not load.results[-1][1]:
                await asyncio.sleep(0.1)
    finally:
        await load.stop()
    assert result.returncode == 0, result.stderr
