"""Project volumes (issue 15) on the Swarm runtime: a process type that mounts one runs pinned to
one node (the volume is a local one, created there by Swarm), the same node release after
release; the app's other process types stay free. The cluster behaviour is tested on a real
Swarm in tests/integration/test_swarm_volumes.py."""

from __future__ import annotations

from typing import Any

import pytest

from backend import labels as L
from backend.pomegranate.release import Process, ReleaseFailed, ReleasePlan, VolumePlan
from backend.pomegranate.swarm_runtime import SwarmRuntime
from backend.pomegranate.swarm_volumes import (
    NODE_LABEL,
    SwarmVolumes,
    assign_nodes,
    init_job,
    pinned_volumes,
)
from backend.settings import Settings

DIGEST = "sha256:" + "b" * 64
VOLUME = "paastech.shop.data.0a1b2c3d4e5f"


def settings() -> Settings:
    return Settings(
        runtime="swarm",
        swarm_docker_url="unix:///nowhere/docker.sock",
        swarm_registry_address="10.231.7.1:5050",
        registry_port=5050,
    )


def plan(application: int, *volumes: VolumePlan) -> ReleasePlan:
    return ReleasePlan(
        project="shop",
        application=application,
        image=f"127.0.0.1:5050/paastech/app-shop@{DIGEST}",
        processes=[Process("web", None, 2), Process("worker", "python w.py", 1)],
        hostnames=["shop.localhost"],
        volumes=list(volumes),
    )


def data(*processes: str) -> VolumePlan:
    return VolumePlan("data", "0a1b2c3d4e5f", "/data", processes)


async def spec(p: ReleasePlan, process: str, node: str | None) -> dict[str, Any]:
    runtime = SwarmRuntime(settings())
    try:
        wanted = next(x for x in p.processes if x.type == process)
        return runtime.service_spec(p, wanted, "paastech_shop", "1000:1000", node)
    finally:
        await runtime.close()


async def test_a_type_with_a_volume_mounts_it_and_is_pinned_to_its_node() -> None:
    worker = await spec(plan(3, data("worker")), "worker", "node-b")
    task = worker["TaskTemplate"]
    assert task["Placement"] == {"Constraints": ["node.id==node-b"]}
    assert task["ContainerSpec"]["Mounts"] == [
        {
            "Type": "volume",
            "Source": VOLUME,
            "Target": "/data",
            "VolumeOptions": {
                "Labels": L.volume_labels("shop", "data", instance="paastech"),
            },
        }
    ]
    assert worker["Labels"][NODE_LABEL] == "node-b"
    # The hardening and the container's labels stay as they are.
    container = task["ContainerSpec"]
    assert container["CapabilityDrop"] == ["ALL"]
    assert container["User"] == "1000:1000"
    assert NODE_LABEL not in container["Labels"]
    assert container["Labels"][L.PROCESS] == "worker"


async def test_the_app_s_other_types_stay_free() -> None:
    web = await spec(plan(3, data("worker")), "web", None)
    assert "Placement" not in web["TaskTemplate"]
    assert "Mounts" not in web["TaskTemplate"]["ContainerSpec"]
    assert NODE_LABEL not in web["Labels"]


async def test_a_type_with_a_volume_but_no_node_is_refused() -> None:
    with pytest.raises(ReleaseFailed, match="mounts volumes but has no node"):
        await spec(plan(3, data("web")), "web", None)


async def test_the_same_node_across_releases() -> None:
    first = await spec(plan(3, data("web", "worker")), "web", "node-b")
    known = pinned_volumes([{"Spec": first}])
    assert known == {VOLUME: "node-b"}
    # Release 4: the volume is known on node-b, so the fresh candidate is not used.
    nodes = assign_nodes({"web": [VOLUME], "worker": [VOLUME]}, known, "node-c")
    assert nodes == {"web": "node-b", "worker": "node-b"}
    second = await spec(plan(4, data("web", "worker")), "web", nodes["web"])
    assert second["TaskTemplate"]["Placement"] == first["TaskTemplate"]["Placement"]
    assert second["Labels"][L.APPLICATION] == "4"


def test_a_new_volume_follows_the_node_of_its_type_s_other_volume() -> None:
    nodes = assign_nodes({"worker": ["old", "new"], "web": ["new"]}, {"old": "node-a"}, "node-c")
    assert nodes == {"web": "node-a", "worker": "node-a"}


def test_volumes_never_used_go_to_the_fresh_node() -> None:
    assert assign_nodes({"web": ["v"]}, {}, "node-c") == {"web": "node-c"}
    with pytest.raises(ReleaseFailed, match="no node to run web"):
        assign_nodes({"web": ["v"]}, {}, None)


def test_a_type_whose_volumes_are_on_two_nodes_is_refused() -> None:
    with pytest.raises(ReleaseFailed, match=r"different nodes \(node-a, node-b\)"):
        assign_nodes({"web": ["v1", "v2"]}, {"v1": "node-a", "v2": "node-b"}, "node-c")


def test_the_init_job_runs_as_root_with_two_capabilities_on_the_node() -> None:
    labels = L.volume_labels("shop", "data", instance="paastech")
    job = init_job(VOLUME, "1000:1000", "reg/paastech/addon-busybox:latest", "node-b", labels)
    container = job["ContainerSpec"]
    assert container["CapabilityDrop"] == ["ALL"]
    assert container["CapabilityAdd"] == ["CAP_CHOWN", "CAP_FOWNER"]
    assert "chown 1000:1000 /volume" in container["Command"][-1]
    assert job["Placement"] == {"Constraints": ["node.id==node-b"]}
    assert "Networks" not in job
    with pytest.raises(ReleaseFailed, match="not a numeric uid:gid"):
        init_job(VOLUME, "app; rm -rf /", "img", "node-b", labels)


class FakeNodes:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    async def list(self, **_: Any) -> list[dict[str, Any]]:
        return [{"ID": i} for i in self.ids]


class FakeManager:
    def __init__(self, ids: list[str]) -> None:
        self.nodes = FakeNodes(ids)


class FakeRuntime:
    """The parts of SwarmRuntime nodes_for reads: the project's services and the node list."""

    def __init__(self, services: list[dict[str, Any]], nodes: list[str]) -> None:
        self.settings = settings()
        self.manager = FakeManager(nodes)
        self._services = services

    async def services(self, project: str | None = None) -> list[dict[str, Any]]:
        return self._services


async def test_nodes_for_keeps_the_node_of_the_running_service() -> None:
    running = {"Spec": await spec(plan(3, data("worker")), "worker", "node-b")}
    volumes = SwarmVolumes(FakeRuntime([running], ["node-a", "node-b"]))  # type: ignore[arg-type]
    assert await volumes.nodes_for(plan(4, data("worker"))) == {"worker": "node-b"}
    assert await volumes.nodes_for(plan(4)) == {}
    # A release phase mount runs on the host engine: no service, no pin.
    assert await volumes.nodes_for(plan(4, data("release"))) == {}


async def test_a_volume_whose_node_left_the_swarm_is_refused() -> None:
    running = {"Spec": await spec(plan(3, data("worker")), "worker", "node-gone")}
    volumes = SwarmVolumes(FakeRuntime([running], ["node-a"]))  # type: ignore[arg-type]
    with pytest.raises(ReleaseFailed, match="on node node-gone, which left the Swarm"):
        await volumes.nodes_for(plan(4, data("worker")))
