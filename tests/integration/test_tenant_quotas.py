"""Quotas per Client and fair build slots (issue 11), end to end on the real platform
(tests/support/platform.py: Pomegranate, the API, the embedded ingress, real Docker).

Alice is the tenant hitting her limits; an administrator sets her overrides with the real
`python -m backend quota` command. Bob is the second Client: his app keeps answering through the
ingress during and after every attack, and Alice's limits and usage are not his.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.services import quotas
from tests.conftest import PASSWORD
from tests.integration.test_deployments import User
from tests.support.gqlclient import SIGNUP, Api, GraphQLErrors
from tests.support.platform import (
    Platform,
    cleanup_project,
    docker_containers,
    docker_inspect,
    fixture,
    platform,
    push,
    tar_dir,
)
from tests.support.polling import within
from tests.support.servers import admin_quota

pytestmark = pytest.mark.docker

QUOTAS = "{ me { quotas { name limit used } } }"
SCALE = 'mutation($p: String!, $n: Int!) { scale(project: $p, processType: "web", replicas: $n) { project { name } } }'
RESOURCES = "mutation($p: String!, $m: Int, $c: Float) { setResources(project: $p, memoryMb: $m, cpu: $c) { project { name } } }"
CREATE = "mutation($n: String!) { createProject(name: $n) { name } }"
# A build that takes a while: COPY of a file unique to each push first, so no cache hit skips it.
SLOW_DOCKERFILE = (
    "FROM paastech/python:bookworm\nWORKDIR /app\nCOPY . /app\nRUN sleep 3\n"
    'ENV PORT=5000\nEXPOSE 5000\nCMD ["python3", "app.py"]\n'
)


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    # One build slot for the whole platform: the fair-scheduling test floods it.
    with platform(
        tmp_path_factory.mktemp("quotas"), health_check_timeout_seconds=20, max_concurrent_builds=1
    ) as p:
        try:
            yield p
        finally:
            for project in p.projects:
                cleanup_project(project)


async def new_user(plat: Platform) -> tuple[User, str]:
    name = f"u{secrets.token_hex(4)}"
    data = await Api(plat.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    return User(Api(plat.api_url, data["signup"]["token"]), data["signup"]["client"]["id"]), name


@pytest.fixture(scope="module")
async def bob(plat: Platform) -> tuple[User, str]:
    """The victim: one app, live, answering through the ingress."""
    user, _ = await new_user(plat)
    project = await user.project(plat)
    outcome = await push(plat, user.id, project, tar_dir(fixture("dockerfile")))
    assert outcome.ok, outcome
    return user, project


async def victim_answers(plat: Platform, project: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(
            f"http://127.0.0.1:{plat.ingress_port}/", headers={"Host": f"{project}.localhost"}
        )
    assert response.status_code == 200 and response.json()["app"] == "dockerfile", response.text


async def quota_table(user: User) -> dict[str, tuple[float, float]]:
    rows = (await user.api(QUOTAS))["me"]["quotas"]
    return {q["name"]: (q["limit"], q["used"]) for q in rows}


async def refused(call, code: str = "VALIDATION") -> str:
    with pytest.raises(GraphQLErrors) as error:
        await call()
    assert error.value.code == code, error.value.errors
    return str(error.value)


# ------------------------------------------------------------------------------------ tests


async def test_quotas_are_listed_with_defaults_and_per_client(plat: Platform, bob):
    bob_user, _ = bob
    alice, _ = await new_user(plat)
    table = await quota_table(alice)
    assert list(table) == list(quotas.NAMES)
    assert table["projects"] == (50, 0) and table["replicas"] == (50, 0)
    await alice.project(plat)
    table = await quota_table(alice)
    assert table["projects"][1] == 1 and table["replicas"][1] == 1
    assert table["memory_mb"][1] == 256 and table["cpu"][1] == 0.5
    assert table["repository_mb"][1] > 0  # the new bare repository
    # Bob's figures are his own: one project, deployed once.
    bob_table = await quota_table(bob_user)
    assert bob_table["projects"][1] == 1 and bob_table["build_minutes_per_hour"][1] > 0


async def test_project_quota_at_its_edge(plat: Platform, bob):
    bob_user, bob_project = bob
    alice, username = await new_user(plat)
    await alice.project(plat)
    admin_quota(plat.data_dir, username, "projects", "2")
    await alice.project(plat)  # the second: exactly at the limit, accepted
    name = f"t-{secrets.token_hex(4)}"
    message = await refused(lambda: alice.api(CREATE, n=name))
    assert message == "quota projects exceeded: limit 2, in use 2"
    assert (await quota_table(alice))["projects"] == (2, 2)  # nothing changed
    # The second Client is not limited by Alice's quota.
    await bob_user.project(plat)
    await victim_answers(plat, bob_project)
    # The override can be dropped again.
    assert "projects" in admin_quota(plat.data_dir, username, "projects", "default")
    assert (await quota_table(alice))["projects"] == (50, 2)


async def test_replicas_memory_and_cpu_quotas_at_their_edges(plat: Platform, bob):
    _, bob_project = bob
    alice, username = await new_user(plat)
    project = await alice.project(plat)
    admin_quota(plat.data_dir, username, "replicas", "3")
    admin_quota(plat.data_dir, username, "memory_mb", "1536")
    admin_quota(plat.data_dir, username, "cpu", "1.5")

    await alice.api(SCALE, p=project, n=3)  # 3 of 3
    message = await refused(lambda: alice.api(SCALE, p=project, n=4))
    assert message == "quota replicas exceeded: limit 3, in use 3, this would make 4"

    await alice.api(RESOURCES, p=project, m=512)  # 3 x 512 = 1536 of 1536
    message = await refused(lambda: alice.api(RESOURCES, p=project, m=513))
    assert message == "quota memory_mb exceeded: limit 1536, in use 1536, this would make 1539"

    await alice.api(RESOURCES, p=project, c=0.5)  # 3 x 0.5 = 1.5 of 1.5
    message = await refused(lambda: alice.api(RESOURCES, p=project, c=0.6))
    assert message == "quota cpu exceeded: limit 1.5, in use 1.5, this would make 1.8"

    table = await quota_table(alice)
    assert (table["replicas"], table["memory_mb"], table["cpu"]) == (
        (3, 3),
        (1536, 1536),
        (1.5, 1.5),
    )
    # Going down is always possible, even over a limit lowered meanwhile.
    admin_quota(plat.data_dir, username, "replicas", "1")
    await alice.api(SCALE, p=project, n=2)
    await victim_answers(plat, bob_project)


async def test_build_minutes_and_build_log_lines_quotas(plat: Platform, bob):
    _, bob_project = bob
    alice, username = await new_user(plat)
    project = await alice.project(plat)
    source = tar_dir(fixture("python"))

    admin_quota(plat.data_dir, username, "build_minutes_per_hour", "0")
    outcome = await push(plat, alice.id, project, source)
    assert not outcome.ok and outcome.code == "RATE_LIMITED"
    assert outcome.reason == "quota build_minutes_per_hour exceeded: limit 0, in use 0"
    assert (await alice.state(project))["applications"] == []  # nothing was queued

    admin_quota(plat.data_dir, username, "build_minutes_per_hour", "1")  # none used yet: under
    admin_quota(plat.data_dir, username, "build_log_lines", "2")
    outcome = await push(plat, alice.id, project, source)
    assert outcome.ok, outcome
    start = next(i for i, line in enumerate(outcome.lines) if line.startswith("-----> Building"))
    end = next(i for i, line in enumerate(outcome.lines) if line.startswith("-----> Built"))
    build_output = outcome.lines[start + 1 : end]
    assert len(build_output) == 3, build_output  # two lines, then the note
    assert build_output[-1].startswith(" !     quota build_log_lines reached: limit 2 lines")
    await victim_answers(plat, bob_project)


async def test_repository_quota_at_its_edge(plat: Platform, bob):
    _, bob_project = bob
    alice, username = await new_user(plat)
    project = await alice.project(plat)
    used = (await quota_table(alice))["repository_mb"][1]
    assert used > 0
    limit = f"{used / 2:.4f}"
    admin_quota(plat.data_dir, username, "repository_mb", limit)
    outcome = await push(plat, alice.id, project, tar_dir(fixture("python")))
    assert not outcome.ok and outcome.code == "VALIDATION"
    assert outcome.reason == quotas.refusal_message("repository_mb", float(limit), used)
    assert (await alice.state(project))["applications"] == []
    admin_quota(plat.data_dir, username, "repository_mb", f"{used + 1:.4f}")
    assert (await push(plat, alice.id, project, tar_dir(fixture("python")))).ok
    await victim_answers(plat, bob_project)


async def test_image_quota_at_its_edge(plat: Platform, bob):
    _, bob_project = bob
    alice, username = await new_user(plat)
    project = await alice.project(plat)
    admin_quota(plat.data_dir, username, "image_mb_per_project", "1")  # far below any image
    outcome = await push(plat, alice.id, project, tar_dir(fixture("dockerfile")))
    assert not outcome.ok
    prefix = "quota image_mb_per_project exceeded: limit 1, in use "
    assert outcome.reason.startswith(prefix), outcome.reason
    size = float(outcome.reason.removeprefix(prefix))
    assert size > 1
    assert outcome.lines[-1] == f" !     {outcome.reason}"
    assert (await alice.state(project))["liveApplication"] is None
    # Exactly at the image's size: accepted.
    admin_quota(plat.data_dir, username, "image_mb_per_project", f"{size:g}")
    outcome = await push(plat, alice.id, project, tar_dir(fixture("dockerfile")))
    assert outcome.ok, outcome
    await victim_answers(plat, bob_project)


async def test_git_refuses_a_pack_over_the_repository_quota(plat: Platform, tmp_path: Path):
    alice, username = await new_user(plat)
    admin_quota(plat.data_dir, username, "repository_mb", "1")
    project = await alice.project(plat)  # created with receive.maxInputSize = 1 MB
    repo = plat.data_dir / "repos" / f"{project}.git"
    configured = subprocess.run(
        ["git", "config", "--file", str(repo / "config"), "receive.maxInputSize"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert configured == str(1024 * 1024)

    work = tmp_path / "work"
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "small.txt").write_text("small\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "small"], check=True)
    small = subprocess.run([*git, "push", "-q", str(repo), "main"], capture_output=True, text=True)
    assert small.returncode == 0, small.stderr  # under the limit
    (work / "big.bin").write_bytes(secrets.token_bytes(3 * 1024 * 1024))  # incompressible
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "big"], check=True)
    big = subprocess.run([*git, "push", str(repo), "main"], capture_output=True, text=True)
    assert big.returncode != 0
    assert "pack exceeds maximum allowed size" in big.stderr


def building_order(plat: Platform) -> list[tuple[str, str]]:
    """(project, status) of every queued/building status change, in the order they happened."""
    with sqlite3.connect(plat.data_dir / "paastech.sqlite3") as db:
        rows = db.execute(
            "SELECT p.name, s.status FROM status_change s JOIN application a ON a.id = "
            "s.application_id JOIN project p ON p.id = a.project_id "
            "WHERE s.status IN ('queued', 'building') ORDER BY s.id"
        ).fetchall()
    return [(name, status) for name, status in rows]


async def test_fair_builds_under_a_flood(plat: Platform, bob):
    _, bob_project = bob
    alice, _ = await new_user(plat)
    carol, _ = await new_user(plat)
    flood = [await alice.project(plat) for _ in range(5)]
    single = await carol.project(plat)

    def slow(project: str) -> bytes:
        changes = {"Dockerfile": SLOW_DOCKERFILE, "nonce.txt": secrets.token_hex(8)}
        return tar_dir(fixture("dockerfile"), changes)

    pushes = [asyncio.create_task(push(plat, alice.id, p, slow(p))) for p in flood]
    # Carol pushes once Alice's five are queued (one building, four waiting for the slot).
    async with asyncio.timeout(60):
        while sum(1 for p, s in building_order(plat) if p in flood and s == "queued") < 5:
            await asyncio.sleep(0.1)
    carol_outcome = await push(plat, carol.id, single, slow(single))
    outcomes = await asyncio.gather(*pushes)
    assert carol_outcome.ok, carol_outcome
    assert all(o.ok for o in outcomes), outcomes

    order = building_order(plat)
    queued_at = order.index((single, "queued"))
    built_at = order.index((single, "building"))
    # Between Carol's push and the start of her build, at most one of Alice's builds started:
    # the one that got the slot in between (the turn that was running when she arrived ends).
    alice_started = [p for p, s in order[queued_at:built_at] if p in flood and s == "building"]
    assert len(alice_started) <= 1, order
    # ...while Alice still had builds waiting: without fairness Carol would have been last.
    assert sum(1 for p, s in order[built_at:] if p in flood and s == "building") >= 2, order
    await victim_answers(plat, bob_project)


async def test_second_clients_app_cannot_reach_the_victims_containers(plat: Platform, bob):
    """Through the whole platform: Alice pushes an attacker app and asks it, through the ingress,
    to connect to Bob's container by name and by address; both fail, Bob keeps answering."""
    _, bob_project = bob
    alice, _ = await new_user(plat)
    evil = await alice.project(plat)
    assert (await push(plat, alice.id, evil, tar_dir(fixture("prober")))).ok
    (victim,) = [r for r in docker_containers(bob_project) if r["state"] == "running"]
    networks = docker_inspect(victim["name"])["NetworkSettings"]["Networks"]
    ((network, settings),) = networks.items()
    assert network.endswith(f".{bob_project}")

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{plat.ingress_port}",
        headers={"Host": f"{evil}.localhost"},
        timeout=20,
    ) as http:
        # The ingress learns the new app's route from the engine's events, a moment after the
        # release is RUNNING: ask until the app itself answers.
        async with within(30, "the attacker's app answering through the ingress"):
            while (answer := await http.get("/whoami")).status_code != 200:
                await asyncio.sleep(0.1)
        whoami = answer.json()
        assert whoami["uid"] != 0 and whoami["write_etc"].startswith("PermissionError")
        resolved = (await http.get("/resolve", params={"host": victim["name"]})).json()
        assert resolved["resolved"] is False, resolved
        for host in (victim["name"], settings["IPAddress"]):
            answer = (await http.get("/probe", params={"host": host, "port": "5000"})).json()
            assert answer["connected"] is False, answer
    await victim_answers(plat, bob_project)
