"""Project volumes (issue 15) on a real 3-node Swarm, run by tests/integration/test_swarm_runtime.py
on its cluster (imported there: the cluster script's bridge and namespaces are fixed, so two
modules must not each bring one up): the process type that mounts a volume runs pinned to one node, a worker;
its replicas share the volume there; a file written survives a new release, which lands on the
same node. The volume is listed with its size from that node's engine, cannot be removed while a
service uses it, and is removed from the node once none does.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from backend import labels as L
from backend.pomegranate.networks import get_network
from backend.pomegranate.release import Process, ReleasePlan, VolumePlan
from backend.pomegranate.runtime import BuiltImage, VolumeInUse
from backend.pomegranate.swarm_runtime import SwarmRuntime, overlay_name
from backend.pomegranate.swarm_volumes import NODE_LABEL
from backend.settings import Settings
from tests.support.cluster import Cluster
from tests.support.platform import tar_dir
from tests.support.polling import within

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"
HEALTH_TIMEOUT = 20.0


async def ignore(line: str) -> None:
    pass


@pytest.fixture(scope="module")
async def volume_built(runtime: SwarmRuntime) -> AsyncIterator[BuiltImage]:
    """The volume fixture app, built once on this host and pushed to the registry."""
    owner = f"swarm-vol-{uuid.uuid4().hex[:6]}"
    yield await runtime.build(owner, 1, tar_dir(APPS / "volume"), ignore)
    for tag in await runtime.list_images(owner):
        with contextlib.suppress(Exception):
            await runtime.remove_image(tag, force=True)
    await runtime.remove_build_cache(owner)


@pytest.fixture
async def volume_project(runtime: SwarmRuntime) -> AsyncIterator[str]:
    """A unique project; its services, overlay network and volumes are removed afterwards."""
    name = f"v-{uuid.uuid4().hex[:8]}"
    yield name
    for service in await runtime.services(name):
        await runtime.remove_service(service["Spec"]["Name"])
    async with within(60, f"the services of {name} to go"):
        while await runtime.services(name):
            await asyncio.sleep(0.5)
    last: list[str] = []
    async with within(90, lambda: f"the network and volumes of {name} to go: {last}"):
        while True:
            with contextlib.suppress(Exception):
                await runtime.remove_project_network(name)
            try:
                for volume in await runtime.list_volumes([name]):
                    await runtime.remove_volume(name, volume.docker_name)
            except Exception as exc:  # a task's container still going: try again
                last[:] = [f"{type(exc).__name__}: {exc}"]
            network = overlay_name(name, instance=runtime.settings.instance)
            if await get_network(runtime.manager, network) is None and not (
                await runtime.list_volumes([name])
            ):
                break
            await asyncio.sleep(0.5)


def plan(project: str, built: BuiltImage, application: int) -> ReleasePlan:
    return ReleasePlan(
        project=project,
        application=application,
        image=built.image,
        # web mounts the volume (2 replicas share it); worker has none: it stays free.
        processes=[Process("web", "python3 app.py", 2), Process("worker", "python3 app.py", 1)],
        port=5000,
        hostnames=[f"{project}.{Settings().base_domain}"],
        health_path="/",
        health_timeout=HEALTH_TIMEOUT,
        volumes=[VolumePlan("data", uuid.uuid4().hex[:12], "/data", ("web",))],
    )


async def web_tasks(runtime: SwarmRuntime, project: str) -> list[tuple[str, int]]:
    """(node address, published port) of each running web task."""
    return sorted(
        (c.labels["paastech.swarm.node"], c.host_port)
        for c in await runtime.list_containers(project)
        if c.running and c.host_port and c.ownership and c.ownership.process == "web"
    )


@pytest.mark.docker
@pytest.mark.timeout(600)
async def test_a_volume_pins_its_type_to_one_worker_and_its_data_survives_a_release(
    runtime: SwarmRuntime, volume_built: BuiltImage, volume_project: str, cluster: Cluster
) -> None:
    built, project = volume_built, volume_project
    first = plan(project, built, 1)
    logs: list[str] = []

    async def log(line: str) -> None:
        logs.append(line)

    await runtime.deploy(first, log)
    assert any(line.startswith("Volumes pin web to node ") for line in logs), logs
    web = await runtime.service(f"{runtime.settings.instance}_{project}_web")
    worker = await runtime.service(f"{runtime.settings.instance}_{project}_worker")
    assert web is not None and worker is not None
    node = web["Spec"]["Labels"][NODE_LABEL]
    assert web["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == [f"node.id=={node}"]
    assert NODE_LABEL not in worker["Spec"]["Labels"]
    assert not (worker["Spec"]["TaskTemplate"].get("Placement") or {}).get("Constraints")
    # A worker, not the manager (node 1), like add-ons.
    manager_id = (await runtime.manager.system.info())["Swarm"]["NodeID"]
    assert node != manager_id

    tasks = await web_tasks(runtime, project)
    assert len(tasks) == 2
    assert len({address for address, _ in tasks}) == 1, tasks
    address = tasks[0][0]
    assert address != cluster.node_addresses[0]

    async with httpx.AsyncClient(timeout=10) as client:
        for task_address, port in tasks:
            status = (await client.get(f"http://{task_address}:{port}/")).json()
            assert status["writable"] is True, status  # given to the app's non-root user
            assert status["uid"] != 0
        # The replicas share the volume: one writes, the other reads.
        (a_addr, a_port), (b_addr, b_port) = tasks
        wrote = await client.get(f"http://{a_addr}:{a_port}/write?file=kept&text=still-here")
        assert wrote.status_code == 200, wrote.text
        read = await client.get(f"http://{b_addr}:{b_port}/read?file=kept")
        assert read.json() == {"text": "still-here"}

        # A new release: the same node, the same data.
        second = plan(project, built, 2)
        second.volumes = first.volumes
        await runtime.deploy(second, ignore)
        web = await runtime.service(f"{runtime.settings.instance}_{project}_web")
        assert web is not None
        assert web["Spec"]["Labels"][NODE_LABEL] == node
        assert web["Spec"]["Labels"][L.APPLICATION] == "2"
        tasks = await web_tasks(runtime, project)
        assert {a for a, _ in tasks} == {address}
        for task_address, port in tasks:
            read = await client.get(f"http://{task_address}:{port}/read?file=kept")
            assert read.json() == {"text": "still-here"}
            missing = await client.get(f"http://{task_address}:{port}/read?file=never")
            assert missing.status_code == 404

    # Listed with its size, measured by the worker's own engine.
    listed = await runtime.list_volumes([project], sizes=True)
    docker_name = first.volumes[0].mount(project, runtime.settings.instance).docker_name
    assert [v.docker_name for v in listed] == [docker_name]
    assert listed[0].volume == "data"
    assert listed[0].size_bytes >= len("still-here")
    # Not removable while the service uses it: nothing changes.
    with pytest.raises(VolumeInUse):
        await runtime.remove_volume(project, docker_name)
    assert [v.docker_name for v in await runtime.list_volumes([project])] == [docker_name]
