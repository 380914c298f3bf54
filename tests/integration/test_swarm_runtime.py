"""SwarmRuntime on a real 3-node Swarm (issue 16): scripts/cluster.sh brings it up once for this
module (three dockerds in network namespaces; the host's engine joins nothing) and tears it down
afterwards, also when a test fails. The app is built once on the platform host by the isolated
builder and pushed to the registry; the nodes pull it by digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from backend.pomegranate.release import (
    Process,
    ReleasePlan,
    RollingRuntime,
    release,
)
from backend.pomegranate.runtime import BuiltImage
from backend.pomegranate.swarm_runtime import SwarmRuntime, overlay_name, service_name
from backend.settings import Settings
from tests.support.cluster import Cluster, swarm_cluster
from tests.support.platform import tar_dir
from tests.support.polling import within

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

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
    )


@pytest.fixture(scope="module")
async def runtime(settings: Settings) -> AsyncIterator[SwarmRuntime]:
    rt = SwarmRuntime(settings)
    yield rt
    await rt.close()


@pytest.fixture(scope="module")
async def built(runtime: SwarmRuntime) -> BuiltImage:
    """The dockerfile fixture app, built once on this host and pushed to the registry."""

    async def ignore(line: str) -> None:
        pass

    return await runtime.build("swarm-app", 1, tar_dir(APPS / "dockerfile"), ignore)


@pytest.fixture
async def project(runtime: SwarmRuntime) -> AsyncIterator[str]:
    """A unique project; its services and overlay network are removed afterwards."""
    name = f"s-{uuid.uuid4().hex[:8]}"
    yield name
    for info in await runtime.list_containers(name):
        await runtime.remove(info.id)
    async with within(60, f"the services of {name} to go"):
        while await runtime._services(name):
            await asyncio.sleep(0.5)
    async with within(60, f"the network of {name} to go"):
        while True:
            with contextlib.suppress(Exception):
                await runtime.remove_project_network(name)
            if (
                await runtime._overlay(overlay_name(name, instance=runtime.settings.instance))
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


def test_swarm_runtime_rolls_releases_itself(settings: Settings):
    assert isinstance(SwarmRuntime(settings), RollingRuntime)


async def test_release_spreads_replicas_over_nodes(
    runtime: SwarmRuntime, built: BuiltImage, project: str, settings: Settings, cluster: Cluster
):
    logs = Logs()
    result = await release(runtime, plan(project, built, 1), logs, settings)
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
    assert all(c.image.startswith(f"{registry}/paastech/app-swarm-app@sha256:") for c in running)
    bodies = await answers(runtime, project)
    assert len(bodies) == 3
    assert {b["env"]["PAASTECH_RELEASE"] for b in bodies} == {"1"}
    assert {b["env"]["GREETING"] for b in bodies} == {"hello"}
    # The project's own overlay network; its tasks run hardened and limited.
    name = service_name(project, "web", instance=settings.instance)
    spec = (await runtime._service(name))["Spec"]
    task = spec["TaskTemplate"]
    assert task["Networks"][0]["Target"] == overlay_name(project, instance=settings.instance)
    assert task["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
    assert task["ContainerSpec"]["User"] != "0"
    assert task["Resources"]["Limits"]["MemoryBytes"] == 256 * 1024 * 1024
    assert spec["UpdateConfig"]["Order"] == "start-first"
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"
