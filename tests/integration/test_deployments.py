"""Releases end to end: GraphQL + the internal Deployments service + Pomegranate + real Docker."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from backend.pomegranate.registry import Registry
from backend.settings import Settings
from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api, GraphQLErrors
from tests.support.platform import (
    Platform,
    cleanup_project,
    docker_containers,
    docker_inspect,
    fixture,
    get_json,
    light_tar,
    platform,
    push,
    tar_dir,
)

pytestmark = pytest.mark.docker

PROJECT = """query($p: String!) { project(name: $p) {
  liveApplication { number status image imageDigest }
  applications(first: 10) { number status cause failureReason }
  processes { processType replica application running hostPort state oomKilled } } }"""


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    # Two images kept per project: the retention test runs here rather than on a platform of its
    # own; no other test builds more than two images in a project and rolls back past them.
    with platform(
        tmp_path_factory.mktemp("platform"),
        health_check_timeout_seconds=12,
        images_kept_per_project=2,
    ) as p:
        yield p


class User:
    def __init__(self, api: Api, client_id: str) -> None:
        self.api = api
        self.id = client_id

    async def project(self, plat: Platform) -> str:
        name = f"t-{secrets.token_hex(4)}"
        await self.api("mutation($n: String!) { createProject(name: $n) { name } }", n=name)
        plat.projects.append(name)
        return name

    async def state(self, project: str) -> dict:
        return (await self.api(PROJECT, p=project))["project"]

    async def web_port(self, project: str, replica: int = 1) -> int:
        for p in (await self.state(project))["processes"]:
            if p["processType"] == "web" and p["replica"] == replica and p["running"]:
                return p["hostPort"]
        raise AssertionError(f"no running web.{replica} in {await self.state(project)}")

    async def wait_status(
        self, project: str, number: int, wanted: set[str], within: float = 120
    ) -> dict:
        async with asyncio.timeout(within):
            while True:
                apps = (await self.state(project))["applications"]
                app = next((a for a in apps if a["number"] == number), None)
                if app and app["status"].lower() in wanted:
                    return app
                await asyncio.sleep(0.3)


@pytest.fixture
async def user(plat: Platform) -> AsyncIterator[User]:
    name = f"u{secrets.token_hex(4)}"
    data = await Api(plat.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    u = User(Api(plat.api_url, data["signup"]["token"]), data["signup"]["client"]["id"])
    before = len(plat.projects)
    yield u
    for project in plat.projects[before:]:
        # Deleted through the API: containers removed behind its back would be started again by
        # the periodic reconcile (the release is still live) and run until the module ends.
        with contextlib.suppress(GraphQLErrors):
            await u.api("mutation($n: String!) { deleteProject(name: $n) { name } }", n=project)
        cleanup_project(project)


@pytest.mark.parametrize("app", ["dockerfile", "python", "node", "static"])
async def test_fixture_app_builds_runs_and_answers(plat: Platform, user: User, app: str) -> None:
    project = await user.project(plat)
    outcome = await push(plat, user.id, project, tar_dir(fixture(app)), commit="a" * 40)
    assert outcome.ok, outcome
    assert outcome.url == f"http://{project}.localhost:8080"
    assert outcome.statuses == ["queued", "building", "deploying", "running"]
    assert any(line.startswith("-----> Building") for line in outcome.lines)
    assert outcome.lines[-1] == f"=====> Application deployed: {outcome.url}"
    body = await get_json(await user.web_port(project))
    if app == "static":
        assert "PaaSTech static fixture" in body["text"]
    else:
        assert body["app"] == app
        assert body["env"]["PAASTECH_APP"] == project
        assert body["env"]["PAASTECH_RELEASE"] == "1"
    state = await user.state(project)
    assert state["liveApplication"]["status"] == "RUNNING"
    # The platform registry's image, by digest (issue 10).
    live = state["liveApplication"]
    assert live["image"].startswith(f"{Settings().registry_address}/paastech/app-{project}@sha256:")
    assert live["imageDigest"] == live["image"].partition("@")[2]


async def test_failed_build_and_failed_starts_keep_previous_release(
    plat: Platform, user: User
) -> None:
    """One live release, then three pushes that fail (a build step, a crash on start, a health
    check never passed): each leaves v1 live and serving, and nothing of its own running."""
    project = await user.project(plat)
    assert (await push(plat, user.id, project, tar_dir(fixture("python")))).ok
    port = await user.web_port(project)

    outcome = await push(plat, user.id, project, tar_dir(fixture("build-fails")))
    assert not outcome.ok
    assert (
        "RUN" in outcome.reason and "exit 3" in outcome.reason
    ) or "code: 3" in outcome.reason, outcome.reason
    assert any("compiling..." in line for line in outcome.lines)
    state = await user.state(project)
    assert state["liveApplication"]["number"] == 1
    assert [a["status"] for a in state["applications"]] == ["FAILED", "RUNNING"]
    assert (await get_json(port))["app"] == "python"
    groups = await user.api(
        "query($p: String!) { project(name: $p) { applications(first: 2) { number finished "
        "live failed } } }",
        p=project,
    )
    assert groups["project"]["applications"] == [
        {"number": 2, "finished": True, "live": False, "failed": True},
        {"number": 1, "finished": True, "live": True, "failed": False},
    ]

    for app, needle in (("crash-on-start", "boom"), ("never-healthy", "health")):
        outcome = await push(plat, user.id, project, tar_dir(fixture(app)))
        assert not outcome.ok, app
        assert needle in outcome.reason, outcome.reason
        assert (await get_json(port))["app"] == "python"
        rows = docker_containers(project)
        assert [r["application"] for r in rows] == ["1"], (app, rows)
    state = await user.state(project)
    assert state["liveApplication"]["number"] == 1
    assert [a["status"] for a in state["applications"]] == ["FAILED"] * 3 + ["RUNNING"]


async def test_env_change_rollback_scale_and_resources(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    assert (await push(plat, user.id, project, light_tar("python"))).ok
    assert (await get_json(await user.web_port(project)))["version"] == "v1"

    # An env change is a new release that runs with the new values.
    await user.api(
        'mutation($p: String!) { setEnvVars(project: $p, vars: [{key: "VERSION", value: "v2"}, {key: "GREETING", value: "héllo"}]) { project { name } } }',
        p=project,
    )
    await user.wait_status(project, 2, {"running"})
    body = await get_json(await user.web_port(project))
    assert (body["version"], body["env"]["GREETING"]) == ("v2", "héllo")
    assert [r["application"] for r in docker_containers(project)] == ["2"]

    # Rollback: a new release with v1's image and config.
    data = await user.api(
        "mutation($p: String!) { rollback(project: $p, number: 1) { number cause } }", p=project
    )
    assert data["rollback"] == {"number": 3, "cause": "rollback to v1"}
    await user.wait_status(project, 3, {"running"})
    assert (await get_json(await user.web_port(project)))["version"] == "v1"
    env = await user.api("query($p: String!) { project(name: $p) { envVars { key } } }", p=project)
    assert env["project"]["envVars"] == []

    # Scale 1 -> 3 -> 1.
    await user.api(
        'mutation($p: String!) { scale(project: $p, processType: "web", replicas: 3) { project { name } } }',
        p=project,
    )
    await user.wait_status(project, 4, {"running"})
    web = [p for p in (await user.state(project))["processes"] if p["running"]]
    assert sorted(p["replica"] for p in web) == [1, 2, 3]
    hostnames = {(await get_json(p["hostPort"]))["hostname"] for p in web}
    assert len(hostnames) == 3
    await user.api(
        'mutation($p: String!) { scale(project: $p, processType: "web", replicas: 1) { project { name } } }',
        p=project,
    )
    await user.wait_status(project, 5, {"running"})
    assert len(docker_containers(project)) == 1

    # Resource limits are visible to Docker.
    await user.api(
        "mutation($p: String!) { setResources(project: $p, memoryMb: 128, cpu: 0.25) { project { name } } }",
        p=project,
    )
    await user.wait_status(project, 6, {"running"})
    host = docker_inspect(docker_containers(project)[0]["name"])["HostConfig"]
    assert host["Memory"] == 128 * 1024 * 1024
    assert host["NanoCpus"] == 250_000_000
    assert host["PidsLimit"] > 0
    assert host["CapDrop"] == ["ALL"]
    assert host["Privileged"] is False
    assert any("no-new-privileges" in opt for opt in host["SecurityOpt"])
    assert host["LogConfig"]["Type"] == "json-file"
    assert not any("docker.sock" in b for b in host.get("Binds") or [])


async def test_bad_release_inputs_change_nothing(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    for query, code, field in [
        (
            'mutation($p: String!) { scale(project: $p, processType: "web", replicas: 99) { project { name } } }',
            "VALIDATION",
            "replicas",
        ),
        (
            'mutation($p: String!) { scale(project: $p, processType: "Bad Type", replicas: 1) { project { name } } }',
            "VALIDATION",
            "processType",
        ),
        (
            "mutation($p: String!) { setResources(project: $p, memoryMb: 1) { project { name } } }",
            "VALIDATION",
            "memoryMb",
        ),
        (
            "mutation($p: String!) { setResources(project: $p, cpu: 99) { project { name } } }",
            "VALIDATION",
            "cpu",
        ),
        (
            "mutation($p: String!) { setResources(project: $p) { project { name } } }",
            "VALIDATION",
            "memoryMb",
        ),
        ("mutation($p: String!) { deploy(project: $p) { number } }", "VALIDATION", "project"),
        (
            "mutation($p: String!) { updateProjectSettings(project: $p, port: 0) { project { name } } }",
            "VALIDATION",
            "port",
        ),
        (
            'mutation($p: String!) { updateProjectSettings(project: $p, healthCheckPath: "nope") { project { name } } }',
            "VALIDATION",
            "healthCheckPath",
        ),
        (
            'mutation($p: String!) { updateProjectSettings(project: $p, deployBranch: "a..b") { project { name } } }',
            "VALIDATION",
            "deployBranch",
        ),
        (
            "mutation($p: String!) { updateProjectSettings(project: $p) { project { name } } }",
            "VALIDATION",
            "port",
        ),
        ("mutation($p: String!) { rollback(project: $p) { number } }", "VALIDATION", "number"),
        (
            "mutation($p: String!) { rollback(project: $p, number: 7) { number } }",
            "NOT_FOUND",
            "number",
        ),
        ("mutation($p: String!) { restart(project: $p) { number } }", "VALIDATION", "project"),
        ("mutation($p: String!) { stop(project: $p) { number } }", "VALIDATION", "project"),
        ("mutation($p: String!) { start(project: $p) { number } }", "VALIDATION", "project"),
    ]:
        err = await user.api.error(query, p=project)
        assert (err.code, err.field) == (code, field), (query, err.errors)
    state = await user.state(project)
    assert state["applications"] == []
    settings = await user.api(
        "query($p: String!) { project(name: $p) { settings { memoryMb cpu replicas { processType replicas } } } }",
        p=project,
    )
    assert settings["project"]["settings"] == {
        "memoryMb": 256,
        "cpu": 0.5,
        "replicas": [{"processType": "web", "replicas": 1}],
    }
    outcome = await push(plat, user.id, "no-such-project", tar_dir(fixture("python")))
    assert (outcome.ok, outcome.code) == (False, "NOT_FOUND")


async def test_worker_process_scaled_and_stop_start(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    assert (await push(plat, user.id, project, light_tar("worker"))).ok
    assert {p["processType"] for p in (await user.state(project))["processes"]} == {"web"}
    await user.api(
        'mutation($p: String!) { scale(project: $p, processType: "worker", replicas: 1) { project { name } } }',
        p=project,
    )
    await user.wait_status(project, 2, {"running"})
    procs = (await user.state(project))["processes"]
    assert sorted((p["processType"], p["running"]) for p in procs) == [
        ("web", True),
        ("worker", True),
    ]

    stopped = await user.api(
        "mutation($p: String!) { stop(project: $p) { number status } }", p=project
    )
    assert stopped["stop"] == {"number": 2, "status": "STOPPED"}
    assert docker_containers(project) == []
    started = await user.api("mutation($p: String!) { start(project: $p) { number } }", p=project)
    await user.wait_status(project, started["start"]["number"], {"running"})
    assert len(docker_containers(project)) == 2


async def test_memory_hog_is_reported_crashed(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    await user.api(
        "mutation($p: String!) { setResources(project: $p, memoryMb: 64) { project { name } } }",
        p=project,
    )
    assert (await push(plat, user.id, project, light_tar("memory-hog"))).ok
    port = await user.web_port(project)
    async with httpx.AsyncClient(timeout=30) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get(f"http://127.0.0.1:{port}/hog")
    app = await user.wait_status(project, 1, {"crashed"}, within=60)
    assert "out of memory" in app["failureReason"]


async def test_build_and_runtime_log_subscriptions(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    outcome = await push(plat, user.id, project, light_tar("ticker"))
    assert outcome.ok
    # A finished release's log replays in order and ends.
    lines = []
    async with user.api.subscribe(
        "subscription($p: String!) { buildLogs(project: $p, number: 1) { seq line } }", p=project
    ) as events:
        async for event in events:
            lines.append(event["buildLogs"])
    assert [x["line"] for x in lines] == outcome.lines
    assert [x["seq"] for x in lines] == list(range(1, len(lines) + 1))

    ticks: list[int] = []
    async with user.api.subscribe(
        "subscription($p: String!) { runtimeLogs(project: $p, tail: 0) { processType replica line } }",
        p=project,
    ) as events:
        async with asyncio.timeout(20):
            async for event in events:
                log = event["runtimeLogs"]
                assert (log["processType"], log["replica"]) == ("web", 1)
                if log["line"].startswith("tick "):
                    ticks.append(int(log["line"].split()[1]))
                if len(ticks) == 5:
                    break
    assert ticks == list(range(ticks[0], ticks[0] + 5))

    # follow: false sends the last `tail` lines and completes by itself (no idle guess).
    recent = await _runtime_logs_once(user.api, project, tail=3)
    assert [(r["processType"], r["replica"]) for r in recent] == [("web", 1)] * 3
    numbers = [int(r["line"].split()[1]) for r in recent]
    assert numbers == list(range(numbers[0], numbers[0] + 3)) and numbers[-1] >= ticks[-1]
    assert await _runtime_logs_once(user.api, project, tail=0) == []


async def _runtime_logs_once(api: Api, project: str, tail: int) -> list[dict]:
    """runtimeLogs with follow: false, read to its end (bounded: it must complete)."""
    got = []
    async with asyncio.timeout(30):
        async with api.subscribe(
            "subscription($p: String!, $t: Int!) { runtimeLogs(project: $p, tail: $t, "
            "follow: false) { processType replica line } }",
            p=project,
            t=tail,
        ) as events:
            async for event in events:
                got.append(event["runtimeLogs"])
    return got


async def test_runtime_logs_without_follow_bad_paths(plat: Platform, user: User) -> None:
    from gql.transport.exceptions import TransportQueryError

    project = await user.project(plat)
    # Nothing runs yet: the stream completes at once, empty.
    assert await _runtime_logs_once(user.api, project, tail=10) == []
    with pytest.raises(TransportQueryError) as bad:
        await _runtime_logs_once(user.api, project, tail=-1)
    assert bad.value.errors[0]["extensions"] == {"code": "VALIDATION", "field": "tail"}
    # A second Client asking for the first one's recent logs learns nothing.
    name = f"u{secrets.token_hex(4)}"
    data = await Api(plat.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    other = Api(plat.api_url, data["signup"]["token"])
    with pytest.raises(TransportQueryError) as attack:
        await _runtime_logs_once(other, project, tail=10)
    assert attack.value.errors[0]["extensions"] == {"code": "NOT_FOUND", "field": "project"}


async def test_live_build_log_and_status_subscription(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    statuses: list[tuple[int, str]] = []
    groups: list[tuple[bool, bool, bool]] = []
    ready = asyncio.Event()

    async def watch() -> None:
        async with user.api.subscribe(
            "subscription($p: String!) { applicationStatus(project: $p) { number status "
            "finished live failed } }",
            p=project,
        ) as events:
            ready.set()
            async for event in events:
                s = event["applicationStatus"]
                statuses.append((s["number"], s["status"]))
                groups.append((s["finished"], s["live"], s["failed"]))
                if s["finished"]:
                    return

    task = asyncio.create_task(watch())
    await ready.wait()
    await asyncio.sleep(0.5)  # the websocket subscription is registered server-side
    outcome = await push(plat, user.id, project, tar_dir(fixture("static")))
    assert outcome.ok
    await asyncio.wait_for(task, 30)
    assert statuses == [(1, "QUEUED"), (1, "BUILDING"), (1, "DEPLOYING"), (1, "RUNNING")]
    # The API says which statuses are finished, live or failed: clients keep no copy.
    assert groups == [(False, False, False)] * 3 + [(True, True, False)]


async def test_pomegranate_killed_mid_deploy(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    assert (await push(plat, user.id, project, light_tar("python"))).ok
    slow = light_tar("python", {"Procfile": "web: sleep 3 && python3 app.py\n"})
    deploy = asyncio.create_task(push(plat, user.id, project, slow))
    await user.wait_status(project, 2, {"deploying"}, within=60)
    plat.pomegranate.kill9()
    outcome = await deploy
    assert not outcome.ok
    plat.pomegranate.start()
    # The API reconnects, reconciles: v1 serves, v2 left nothing behind.
    async with asyncio.timeout(60):
        while {r["application"] for r in docker_containers(project)} != {"1"} or any(
            r["state"] != "running" for r in docker_containers(project)
        ):
            await asyncio.sleep(0.5)
    # The API's channel reconnects within a second (its backoff): until then a read that asks
    # Pomegranate says it is unreachable, then answers.
    async with asyncio.timeout(30):
        while True:
            try:
                state = await user.state(project)
                break
            except GraphQLErrors as exc:
                assert "not reachable" in str(exc), exc
                await asyncio.sleep(0.2)
    assert state["liveApplication"]["number"] == 1
    assert [a["status"] for a in state["applications"]] == ["FAILED", "RUNNING"]
    assert (await get_json(await user.web_port(project)))["app"] == "python"


async def test_delete_project_removes_containers_and_images(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    assert (await push(plat, user.id, project, tar_dir(fixture("static")))).ok
    await user.api("mutation($p: String!) { deleteProject(name: $p) { name } }", p=project)
    assert docker_containers(project) == []
    images = subprocess.run(
        ["docker", "images", "-q", f"{Settings().registry_address}/paastech/app-{project}"],
        capture_output=True,
        text=True,
    ).stdout
    assert images.strip() == ""
    assert await Registry(Settings()).tags(project) == {}
    assert not (plat.data_dir / "builder" / "projects" / project).exists()
    assert not (plat.data_dir / "sources" / f"{project}.tar").exists()


async def test_newer_queued_release_replaces_older_queued_one(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    assert (await push(plat, user.id, project, light_tar("python"))).ok
    slow = light_tar("python", {"Procfile": "web: sleep 2 && python3 app.py\n"})
    first = asyncio.create_task(push(plat, user.id, project, slow))
    await user.wait_status(project, 2, {"building", "deploying"}, within=60)
    second = asyncio.create_task(
        push(plat, user.id, project, light_tar("python", {"VERSION": "x"}))
    )
    await user.wait_status(project, 3, {"queued"}, within=30)
    third = await push(plat, user.id, project, light_tar("python", {"VERSION": "y"}))
    outcomes = [await first, await second, third]
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].reason == "replaced by v4 before it started"
    state = await user.state(project)
    assert [(a["number"], a["status"]) for a in state["applications"]] == [
        (4, "RUNNING"),
        (3, "FAILED"),
        (2, "SUPERSEDED"),
        (1, "SUPERSEDED"),
    ]


async def test_only_the_last_images_are_kept(plat: Platform, user: User) -> None:
    """The module's platform keeps two images per project (images_kept_per_project=2)."""
    project = await user.project(plat)
    live_images: list[str] = []
    for version in ("a", "b", "c"):
        assert (await push(plat, user.id, project, light_tar("python", {"VERSION": version}))).ok
        live_images.append((await user.state(project))["liveApplication"]["image"])
    # Retention deletes the registry's manifests too (issue 10). It runs once the project's
    # queue is idle, after the release is reported running: wait for it, within a bound.
    registry = Registry(Settings())
    async with asyncio.timeout(30):
        while sorted(await registry.tags(project)) != ["2", "3"]:
            await asyncio.sleep(0.2)
    err = await user.api.error(
        "mutation($p: String!) { rollback(project: $p, number: 1) { number } }", p=project
    )
    assert (err.code, err.field) == ("VALIDATION", "number")
    assert "pruned" in str(err)
    rolled = await user.api(
        "mutation($p: String!) { rollback(project: $p) { number cause } }", p=project
    )
    assert rolled["rollback"]["cause"] == "rollback to v2"
    await user.wait_status(project, 4, {"running"})
    # The rollback runs exactly v2's image digest.
    assert (await user.state(project))["liveApplication"]["image"] == live_images[1]
    container = docker_inspect(plat.container(project, 4))
    assert container["Config"]["Image"] == live_images[1]


async def test_redeploy_under_continuous_load_has_zero_failed_requests(
    plat: Platform, user: User
) -> None:
    """A client hammers the app through the embedded ingress during a code push and an env change."""
    project = await user.project(plat)
    await user.api(
        'mutation($p: String!) { scale(project: $p, processType: "web", replicas: 2) { project { name } } }',
        p=project,
    )
    assert (await push(plat, user.id, project, light_tar("python"))).ok
    url, host = f"http://127.0.0.1:{plat.ingress_port}/", {"Host": f"{project}.localhost"}
    async with httpx.AsyncClient(timeout=10) as http:
        await _until_ok(http, url, host)
        results: list[str] = []
        stop = asyncio.Event()

        async def hammer() -> None:
            while not stop.is_set():
                try:
                    resp = await http.get(url, headers=host)
                    results.append(
                        resp.json()["version"]
                        if resp.status_code == 200
                        else f"HTTP {resp.status_code}"
                    )
                except httpx.HTTPError as exc:
                    results.append(f"error {exc!r}")

        workers = [asyncio.create_task(hammer()) for _ in range(4)]
        try:
            changed = light_tar("python", {"VERSION": "file"})
            assert (await push(plat, user.id, project, changed)).ok
            await user.api(
                'mutation($p: String!) { setEnvVars(project: $p, vars: [{key: "VERSION", value: "v3"}]) { project { name } } }',
                p=project,
            )
            await user.wait_status(project, 3, {"running"})
            async with asyncio.timeout(10):
                while not results or results[-1] != "v3":
                    await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*workers)
    failures = [r for r in results if not r.startswith("v")]
    assert len(results) > 100
    assert failures == [], failures[:5]
    assert results[0] == "v1" and results[-1] == "v3"


async def _until_ok(http: httpx.AsyncClient, url: str, headers: dict) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                if (await http.get(url, headers=headers)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)


async def test_port_and_health_check_settings(plat: Platform, user: User) -> None:
    project = await user.project(plat)
    assert (await push(plat, user.id, project, light_tar("python"))).ok
    await user.api(
        'mutation($p: String!) { updateProjectSettings(project: $p, port: 8123, healthCheckPath: "/health") { project { name } } }',
        p=project,
    )
    await user.wait_status(project, 2, {"running"})
    inspect = docker_inspect(
        next(r for r in docker_containers(project) if r["application"] == "2")["name"]
    )
    assert "PORT=8123" in inspect["Config"]["Env"]
    assert "8123/tcp" in inspect["NetworkSettings"]["Ports"]
    assert (await get_json(await user.web_port(project)))["app"] == "python"
    # A health check path the app does not serve fails the release; the live one stays.
    await user.api(
        'mutation($p: String!) { updateProjectSettings(project: $p, healthCheckPath: "/missing") { project { name } } }',
        p=project,
    )
    failed = await user.wait_status(project, 3, {"failed", "running"})
    assert failed["status"] == "FAILED" and "health" in failed["failureReason"]
    assert (await user.state(project))["liveApplication"]["number"] == 2
