"""SwarmRuntime on a real 3-node Swarm (issue 16): scripts/cluster.sh brings it up once for this
module (three dockerds in network namespaces; the host's engine joins nothing) and tears it down
afterwards, also when a test fails. The app is built once on the platform host by the isolated
builder and pushed to the registry; the nodes pull it by digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from backend import labels as L
from backend.pomegranate.networks import get_network
from backend.pomegranate.reconciler import DesiredProject, reconcile
from backend.pomegranate.release import (
    Process,
    ReleaseFailed,
    ReleasePlan,
    RollingRuntime,
    release,
)
from backend.pomegranate.runtime import BuiltImage, RuntimeEvent
from backend.pomegranate.swarm_nodes import NodeError, NodeNotFound, SwarmNodes
from backend.pomegranate.swarm_runtime import SwarmRuntime, overlay_name, service_name
from backend.settings import Settings
from tests.integration.swarm_addon_cases import (  # run here, on this module's cluster
    addon_app,
    swarm_addons,
    test_a_postgres_addon_is_pinned_to_one_node_and_serves_its_project_only,
    test_a_postgres_addon_on_a_worker_is_backed_up_destroyed_and_restored,
    test_a_redis_addon_on_a_worker_is_backed_up_and_restored_into_a_new_one,
    test_an_addon_whose_node_engine_is_not_reachable_is_a_clear_failure,
    test_an_addon_whose_node_is_lost_waits_there_with_its_data,
    test_bad_addon_input_changes_nothing,
    test_psql_and_redis_cli_run_beside_the_addon_on_its_node,
    test_traefik_s_container_joins_each_project_overlay_and_reaches_its_tasks,
    two_projects,
)
from tests.integration.swarm_volume_cases import (  # run here, on this module's cluster
    test_a_volume_pins_its_type_to_one_worker_and_its_data_survives_a_release,
    volume_built,
    volume_project,
)
from tests.support.cluster import SCRIPT, Cluster, bring_back, swarm_cluster
from tests.support.platform import docker_containers, tar_dir
from tests.support.polling import within
from tests.support.servers import ROOT, free_port, stop_process

# func_only: the cluster fixture may first wait for another test run's cluster (machine_lock,
# bounded on its own), which is no part of a test's time.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(600, func_only=True)]
# Imported, so collected and run here (tests/integration/swarm_addon_cases.py says why).
__all__ = [
    "addon_app",
    "swarm_addons",
    "test_a_postgres_addon_is_pinned_to_one_node_and_serves_its_project_only",
    "test_a_postgres_addon_on_a_worker_is_backed_up_destroyed_and_restored",
    "test_a_redis_addon_on_a_worker_is_backed_up_and_restored_into_a_new_one",
    "test_a_volume_pins_its_type_to_one_worker_and_its_data_survives_a_release",
    "test_an_addon_whose_node_engine_is_not_reachable_is_a_clear_failure",
    "test_an_addon_whose_node_is_lost_waits_there_with_its_data",
    "test_bad_addon_input_changes_nothing",
    "test_psql_and_redis_cli_run_beside_the_addon_on_its_node",
    "test_traefik_s_container_joins_each_project_overlay_and_reaches_its_tasks",
    "two_projects",
    "volume_built",
    "volume_project",
]

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"
HEALTH_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with swarm_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def settings(cluster: Cluster) -> Settings:
    return Settings(
        runtime="swarm",
        swarm_docker_url=cluster.manager_url,
        swarm_registry_address=cluster.env["PAASTECH_SWARM_REGISTRY_ADDRESS"],
        # The workers' engines (the manager's is known): add-on backups, sizes and tools.
        swarm_node_docker_urls=cluster.worker_urls,
    )


INGRESS_LOGS: dict[str, Path] = {}  # the ingress fixture's URL -> its log


@pytest.fixture(scope="module")
def ingress(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded ingress, in Swarm mode (PAASTECH_RUNTIME=swarm), as `make up` runs it; its
    URL."""
    data_dir = tmp_path_factory.mktemp("swarm-ingress")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAASTECH_")}
    env.update(
        PAASTECH_INGRESS_PORT=str(port),
        PAASTECH_HOST="127.0.0.1",
        PAASTECH_DATA_DIR=str(data_dir),
        PAASTECH_RUNTIME="swarm",
        PAASTECH_SWARM_DOCKER_URL=cluster.manager_url,
    )
    log_path = data_dir / "ingress.log"
    url = f"http://127.0.0.1:{port}"
    INGRESS_LOGS[url] = log_path
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "ingress"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"ingress exited with {proc.returncode}:\n{log_path.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, headers={"Host": "x.invalid"}).status_code == 404:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"ingress did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield url
        finally:
            stop_process(proc)


@pytest.fixture(scope="module")
async def runtime(settings: Settings) -> AsyncIterator[SwarmRuntime]:
    rt = SwarmRuntime(settings)
    yield rt
    await rt.close()


@pytest.fixture(scope="module")
async def built(runtime: SwarmRuntime) -> AsyncIterator[BuiltImage]:
    """The dockerfile fixture app, built once on this host and pushed to the registry; its image
    and build cache are removed afterwards."""

    async def ignore(line: str) -> None:
        pass

    owner = f"swarm-app-{uuid.uuid4().hex[:6]}"
    yield await runtime.build(owner, 1, tar_dir(APPS / "dockerfile"), ignore)
    for tag in await runtime.list_images(owner):
        with contextlib.suppress(Exception):
            await runtime.remove_image(tag, force=True)
    await runtime.remove_build_cache(owner)


@pytest.fixture
async def project(runtime: SwarmRuntime) -> AsyncIterator[str]:
    """A unique project; its services and overlay network are removed afterwards."""
    name = f"s-{uuid.uuid4().hex[:8]}"
    yield name
    for info in await runtime.list_containers(name):
        await runtime.remove(info.id)
    async with within(60, f"the services of {name} to go"):
        while await runtime.services(name):
            await asyncio.sleep(0.5)
    async with within(60, f"the network of {name} to go"):
        while True:
            with contextlib.suppress(Exception):
                await runtime.remove_project_network(name)
            if (
                await get_network(
                    runtime.manager, overlay_name(name, instance=runtime.settings.instance)
                )
                is None
            ):
                break
            await asyncio.sleep(0.5)


class Logs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)


def plan(
    project: str,
    built: BuiltImage,
    application: int,
    replicas: int = 3,
    health_path: str | None = "/health",
    **extra: object,
) -> ReleasePlan:
    return ReleasePlan(
        project=project,
        application=application,
        image=built.image,
        processes=[Process("web", None, replicas)],
        env={"GREETING": "hello"},
        port=5000,
        hostnames=[f"{project}.{Settings().base_domain}"],
        health_path=health_path,
        health_timeout=HEALTH_TIMEOUT,
        **extra,  # type: ignore[arg-type]
    )


async def answers(runtime: SwarmRuntime, project: str) -> list[dict]:
    """What each running task answers at its node's published port."""
    result = []
    async with httpx.AsyncClient(timeout=5) as client:
        for info in await runtime.list_containers(project):
            if info.running and info.host_port:
                node = info.labels["paastech.swarm.node"]
                response = await client.get(f"http://{node}:{info.host_port}/")
                assert response.status_code == 200
                result.append(response.json())
    return result


def host(project: str) -> str:
    return f"{project}.{Settings().base_domain}"


@dataclass
class Load:
    """Requests sent one after another through the ingress until stopped: what answered, and
    every failure (a non-200 or a transport error)."""

    releases: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    last: str = ""

    @property
    def total(self) -> int:
        return sum(self.releases.values()) + len(self.failures)


@contextlib.asynccontextmanager
async def load(ingress: str, project: str) -> AsyncIterator[Load]:
    result = Load()
    stop = asyncio.Event()

    async def run() -> None:
        async with httpx.AsyncClient(
            base_url=ingress, headers={"Host": host(project)}, timeout=10
        ) as client:
            while not stop.is_set():
                try:
                    response = await client.get("/")
                except httpx.HTTPError as exc:
                    result.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    result.failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                result.last = response.json()["env"]["PAASTECH_RELEASE"]
                result.releases[result.last] += 1

    task = asyncio.create_task(run())
    try:
        yield result
    finally:
        stop.set()
        await task


async def routed(ingress: str, project: str, release_number: str, at_least: int = 10) -> None:
    """Wait until the ingress answers ``at_least`` requests in a row from ``release_number``."""
    seen: list[str] = []
    async with (
        within(60, lambda: f"{host(project)} to answer release {release_number}: {seen[-5:]}"),
        httpx.AsyncClient(base_url=ingress, headers={"Host": host(project)}, timeout=10) as client,
    ):
        streak = 0
        while streak < at_least:
            response = await client.get("/")
            ok = response.status_code == 200
            seen.append(response.json()["env"]["PAASTECH_RELEASE"] if ok else str(response))
            streak = streak + 1 if ok and seen[-1] == release_number else 0
            if streak == 0:
                await asyncio.sleep(0.2)


def test_swarm_runtime_rolls_releases_itself(settings: Settings):
    assert isinstance(SwarmRuntime(settings), RollingRuntime)


async def test_release_spreads_replicas_over_nodes(
    runtime: SwarmRuntime, built: BuiltImage, project: str, settings: Settings, cluster: Cluster
):
    logs = Logs()
    first = plan(project, built, 1)
    # The release phase runs once, on the platform host's engine, before any service exists.
    first.processes.append(Process(L.RELEASE_PROCESS, "echo migrated-$PAASTECH_RELEASE", 1))
    result = await release(runtime, first, logs, settings)
    assert "release: migrated-1" in logs.lines
    # Its container is removed from the host engine once it has run (it used to stay, exited).
    left = docker_containers(project)
    assert left == [], left
    assert logs.lines.index("Release phase done") < next(
        i for i, line in enumerate(logs.lines) if line.startswith("Creating service")
    )
    assert result.stopped_applications == []
    assert "Release 1 is live" in logs.lines
    running = [c for c in result.containers if c.running]
    assert len(running) == 3
    assert {c.ownership.replica for c in running if c.ownership} == {1, 2, 3}
    assert all(c.ownership and c.ownership.application == 1 for c in running)
    nodes = {c.labels["paastech.swarm.node"] for c in running}
    assert len(nodes) >= 2, nodes
    assert nodes <= set(cluster.node_addresses)
    # Pulled by digest from the registry address the nodes reach.
    registry = settings.swarm_registry_address
    assert all(c.image == runtime.node_image(built.image) for c in running)
    assert all(c.image.startswith(f"{registry}/paastech/app-swarm-app-") for c in running)
    bodies = await answers(runtime, project)
    assert len(bodies) == 3
    # Each task's output, from its node through the manager.
    lines: list[str] = []
    async with within(30, lambda: f"a request line in the task's log: {lines[-3:]}"):
        while not any("GET / " in line for line in lines):
            lines = [line async for line in runtime.logs(running[0].id, follow=False, tail=50)]
    assert {b["env"]["PAASTECH_RELEASE"] for b in bodies} == {"1"}
    assert {b["env"]["GREETING"] for b in bodies} == {"hello"}
    # The project's own overlay network; its tasks run hardened and limited.
    name = service_name(project, "web", instance=settings.instance)
    spec = (await runtime.service(name))["Spec"]
    task = spec["TaskTemplate"]
    assert all(c.networks == [overlay_name(project, instance=settings.instance)] for c in running)
    assert task["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
    assert task["ContainerSpec"]["User"] != "0"
    assert task["Resources"]["Limits"]["MemoryBytes"] == 256 * 1024 * 1024
    assert spec["UpdateConfig"]["Order"] == "start-first"
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"


async def test_redeploy_under_load_has_no_failed_request(
    runtime: SwarmRuntime, built: BuiltImage, project: str, settings: Settings, ingress: str
):
    await release(runtime, plan(project, built, 1), Logs(), settings)
    await routed(ingress, project, "1")
    logs = Logs()
    async with load(ingress, project) as traffic:
        result = await release(runtime, plan(project, built, 2), logs, settings)
        await routed(ingress, project, "2")
    assert result.stopped_applications == [1]
    assert "Release 2 is live" in logs.lines
    assert traffic.failures == [], traffic.failures[:5]
    # Both releases served during the switch, and the new one at the end.
    assert traffic.releases["1"] > 0 and traffic.releases["2"] > 0, traffic.releases
    assert traffic.last == "2"
    running = [c for c in await runtime.list_containers(project) if c.running]
    assert {c.ownership.application for c in running if c.ownership} == {2}
    assert len(running) == 3


async def test_failed_health_check_keeps_the_old_release_serving(
    runtime: SwarmRuntime, built: BuiltImage, project: str, settings: Settings, ingress: str
):
    await release(runtime, plan(project, built, 1, replicas=2), Logs(), settings)
    await routed(ingress, project, "1")
    bad = plan(project, built, 2, replicas=2, health_path="/missing")
    bad.health_timeout = 4.0
    async with load(ingress, project) as traffic:
        with pytest.raises(ReleaseFailed) as failure:
            await release(runtime, bad, Logs(), settings)
    assert "rolled back" in failure.value.reason
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.releases) == {"1"}, traffic.releases
    # Swarm rolled the service back to release 1's spec: only its tasks run and are routed.
    name = service_name(project, "web", instance=settings.instance)
    assert (await runtime.service(name))["Spec"]["Labels"][L.APPLICATION] == "1"
    running = [c for c in await runtime.list_containers(project) if c.running]
    assert {c.ownership.application for c in running if c.ownership} == {1}
    await routed(ingress, project, "1")


async def test_scale_two_five_one(
    runtime: SwarmRuntime, built: BuiltImage, project: str, settings: Settings, ingress: str
):
    events: list[RuntimeEvent] = []

    async def watch() -> None:
        async for event in runtime.events():
            if event.ownership is not None and event.ownership.project == project:
                events.append(event)

    watcher = asyncio.create_task(watch())
    for replicas in (2, 5, 1):
        result = await release(
            runtime, plan(project, built, 1, replicas=replicas), Logs(), settings
        )
        running = [c for c in result.containers if c.running]
        async with within(60, f"{replicas} running tasks"):
            while len(running) != replicas:
                await asyncio.sleep(0.5)
                running = [c for c in await runtime.list_containers(project) if c.running]
        assert sorted(c.ownership.replica for c in running if c.ownership) == list(
            range(1, replicas + 1)
        )
        if replicas == 5:
            assert len({c.labels["paastech.swarm.node"] for c in running}) == 3
        await routed(ingress, project, "1")

    # Runtime events from Swarm's task states: the replicas that started, and each of the 4
    # tasks the scale-down ended (also when it came within one poll of the scale-up converging).
    def seen() -> str:
        ended = f"; the watch ended: {watcher.exception()!r}" if watcher.done() else ""
        return f"start and die events: {[(e.kind, e.container_id[:6]) for e in events]}{ended}"

    async with within(120, seen):
        while Counter(e.kind for e in events)["die"] < 4:
            await asyncio.sleep(0.5)
    watcher.cancel()
    assert Counter(e.kind for e in events)["die"] == 4, seen()
    assert Counter(e.kind for e in events)["start"] == 5, seen()
    assert all(e.ownership and e.ownership.process == "web" for e in events)


async def test_a_dead_node_s_tasks_are_rescheduled_while_the_app_answers(
    runtime: SwarmRuntime,
    built: BuiltImage,
    project: str,
    settings: Settings,
    ingress: str,
    cluster: Cluster,
):
    await release(runtime, plan(project, built, 1, replicas=3), Logs(), settings)
    await routed(ingress, project, "1")
    running = [c for c in await runtime.list_containers(project) if c.running]
    # A worker with a task dies (never the manager: one manager is no quorum to lose).
    victim = next(
        address
        for address in cluster.node_addresses[1:]
        if any(c.labels["paastech.swarm.node"] == address for c in running)
    )
    node = cluster.node_addresses.index(victim) + 1
    try:
        async with load(ingress, project) as traffic:
            killed = time.monotonic()
            subprocess.run([str(SCRIPT), "kill-node", str(node)], check=True, timeout=60)
            async with within(90, "3 tasks running on the surviving nodes"):
                while True:
                    alive = [
                        c
                        for c in await runtime.list_containers(project)
                        if c.running and c.labels["paastech.swarm.node"] != victim
                    ]
                    if len(alive) == 3:
                        break
                    await asyncio.sleep(0.5)
            rescheduled = time.monotonic() - killed
            await routed(ingress, project, "1")
        print(f"node {node} died: its tasks ran again elsewhere after {rescheduled:.1f}s")
        placement = [c.labels["paastech.swarm.node"] for c in running]
        # What the ingress saw, should a request have failed: every change of where it routed
        # the project, and each distinct warning once, at its first time ("date time text").
        seen: dict[str, str] = {}  # what makes a line distinct -> the line shown
        for line in INGRESS_LOGS[ingress].read_text().splitlines():
            parts = line.split(" ", 2)
            if len(parts) < 3:  # a traceback's continuation line
                continue
            _, at, text = parts
            if f"{host(project)}: routed to" in text:
                seen[f"{at} {text}"] = f"{at} {text}"  # each change, even back to an earlier set
            elif "WARNING" in text:
                seen.setdefault(text, f"{at} {text}")
        assert traffic.failures == [], "\n".join(
            [
                f"{len(traffic.failures)} of {traffic.total} failed; tasks were on {placement}, "
                f"{victim} died",
                *[f"{text} x{n}" for text, n in Counter(traffic.failures).most_common(5)],
                *list(seen.values())[-30:],
            ]
        )
        assert traffic.total > 0
    finally:
        # The node comes back (and rejoins) for the tests that run after this one.
        bring_back()


async def test_reconcile_makes_the_services_match_the_database(
    runtime: SwarmRuntime, built: BuiltImage, project: str, settings: Settings
):
    live = plan(project, built, 1, replicas=2)
    await release(runtime, live, Logs(), settings)
    name = service_name(project, "web", instance=settings.instance)
    before = (await runtime.service(name))["ID"]
    others = {s["Spec"]["Labels"][L.PROJECT] for s in await runtime.services()} - {
        project
    }  # any other test's services are not this test's to touch
    # The live release is in place: adopted, untouched.
    result = await reconcile(runtime, [DesiredProject(project, live=live)], settings, skip=others)
    assert result.adopted == [name] and result.removed == [] and result.started == []
    assert (await runtime.service(name))["ID"] == before
    # Its service vanished (an operator's `docker service rm`): deployed again.
    await runtime.remove_service(name)
    result = await reconcile(runtime, [DesiredProject(project, live=live)], settings, skip=others)
    assert result.started == [name]
    running = [c for c in await runtime.list_containers(project) if c.running]
    assert len(running) == 2 and all(c.ownership.application == 1 for c in running if c.ownership)
    # The project is gone from the database: its services go, and its network.
    result = await reconcile(runtime, [], settings, skip=others)
    assert result.removed == [name]
    assert await runtime.services(project) == []


async def test_draining_a_node_moves_its_tasks_with_no_failed_request(
    runtime: SwarmRuntime,
    built: BuiltImage,
    project: str,
    settings: Settings,
    ingress: str,
    cluster: Cluster,
):
    await release(runtime, plan(project, built, 1, replicas=3), Logs(), settings)
    await routed(ingress, project, "1")
    nodes = SwarmNodes(runtime.manager, settings.instance)
    listed = await nodes.list()
    assert sorted(n.address for n in listed) == sorted(cluster.node_addresses)
    assert [n.role for n in listed] == ["manager", "worker", "worker"]
    assert listed[0].leader and all(n.state == "ready" for n in listed), listed
    assert all(n.availability == "active" and n.nano_cpus > 0 for n in listed), listed
    assert sum(n.tasks for n in listed) == 3
    command = await nodes.join_command()
    assert command.startswith("docker swarm join --token SWMTKN-")
    assert command.endswith(f" {cluster.node_addresses[0]}:2377")
    # Refusals change nothing: a manager, a worker that still takes tasks, an unknown node.
    with pytest.raises(NodeError, match="manager"):
        await nodes.remove(listed[0].id)
    victim = next(n for n in listed[1:] if n.tasks > 0)
    with pytest.raises(NodeError, match="drain it first"):
        await nodes.remove(victim.id)
    with pytest.raises(NodeNotFound):
        await nodes.drain("no-such-node")
    assert [(n.id, n.availability) for n in await nodes.list()] == [
        (n.id, "active") for n in listed
    ]
    try:
        async with load(ingress, project) as traffic:
            drained = await nodes.drain(victim.id)
            await routed(ingress, project, "1")
        assert drained.availability == "drain" and drained.tasks == 0
        running = [c for c in await runtime.list_containers(project) if c.running]
        assert len(running) == 3
        assert victim.address not in {c.labels["paastech.swarm.node"] for c in running}
        assert traffic.failures == [], traffic.failures[:5]
        assert traffic.total > 0
    finally:
        await nodes.activate(victim.id)
    assert (await nodes.get(victim.id)).availability == "active"
