"""The node rpcs end to end in one process (issue 16): the API's node service over a real gRPC
server (PomegranateService, the shared-secret interceptor) to SwarmNodes on an in-memory manager
(its nodes, services, tasks and swarm answers), and on the single-engine runtime. What each
Pomegranate answer becomes for the API: NOT_FOUND, CONFLICT and VALIDATION with field `node`,
UNAVAILABLE with the reason. The real Swarm side is tested in
tests/integration/test_swarm_runtime.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend.errors import Conflict, NotFound, Unavailable
from backend.pomegranate.docker_runtime import DockerRuntime
from backend.pomegranate.server import create_server
from backend.pomegranate.service import PomegranateService
from backend.pomegranate.swarm_runtime import SwarmRuntime
from backend.rpc.pomegranate_client import PomegranateClient
from backend.services import nodes
from backend.settings import Settings, get_settings

MANAGER = {
    "ID": "mgr0000000000000000000001",
    "Version": {"Index": 5},
    "Spec": {"Role": "manager", "Availability": "active"},
    "Description": {"Hostname": "n1", "Resources": {"NanoCPUs": 2_000_000_000}},
    "Status": {"State": "ready", "Addr": "10.0.0.1"},
    "ManagerStatus": {"Leader": True, "Addr": "10.0.0.1:2377"},
}
WORKER = {
    "ID": "wrk0000000000000000000002",
    "Version": {"Index": 7},
    "Spec": {"Role": "worker", "Availability": "active"},
    "Description": {"Hostname": "n2", "Resources": {"MemoryBytes": 1024**3}},
    "Status": {"State": "ready", "Addr": "10.0.0.2"},
}


class Nodes:
    def __init__(self) -> None:
        self.items = [MANAGER, WORKER]
        self.updates: list[tuple[str, int, dict]] = []
        self.removed: list[str] = []

    async def list(self, *, filters: Any = None) -> list[dict]:
        role = (filters or {}).get("role")
        return [n for n in self.items if role is None or n["Spec"]["Role"] == role]

    async def inspect(self, *, node_id: str) -> dict:
        return next(n for n in self.items if n["ID"] == node_id)

    async def update(self, *, node_id: str, version: int, spec: dict) -> dict:
        self.updates.append((node_id, version, spec))
        return {}

    async def remove(self, *, node_id: str, force: bool = False) -> dict:
        self.removed.append(node_id)
        return {}


class Listing:
    async def list(self, *, filters: Any = None) -> list[dict]:
        return []


class Swarm:
    async def inspect(self) -> dict:
        return {"JoinTokens": {"Worker": "SWMTKN-1-worker", "Manager": "SWMTKN-1-manager"}}


class Manager:
    def __init__(self) -> None:
        self.nodes = Nodes()
        self.services = Listing()
        self.tasks = Listing()
        self.swarm = Swarm()

    async def close(self) -> None:
        pass


async def serve(runtime: Any) -> tuple[Any, PomegranateClient]:
    service = PomegranateService(runtime, get_settings())
    server, port = create_server(service, "127.0.0.1:0")
    await server.start()
    return server, PomegranateClient(target=f"127.0.0.1:{port}")


@pytest.fixture
async def swarm(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Manager, PomegranateClient]]:
    monkeypatch.setenv("PAASTECH_INTERNAL_KEY", "node-rpcs-test-" + "k" * 40)
    get_settings.cache_clear()
    manager = Manager()
    runtime = SwarmRuntime(Settings(runtime="swarm"), manager=manager)  # type: ignore[arg-type]
    server, client = await serve(runtime)
    yield manager, client
    await client.close()
    await server.stop(None)
    get_settings.cache_clear()


async def test_the_operator_lists_nodes_and_gets_the_join_command(swarm):
    _, client = swarm
    found = await nodes.list_nodes(client)
    assert [(n.hostname, n.role, n.leader) for n in found] == [
        ("n1", "manager", True),
        ("n2", "worker", False),
    ]
    assert found[0].nano_cpus == 2_000_000_000 and found[1].memory_bytes == 1024**3
    command = await nodes.join_command(client)
    assert command == "docker swarm join --token SWMTKN-1-worker 10.0.0.1:2377"


async def test_drain_then_remove_a_worker(swarm):
    manager, client = swarm
    drained = await nodes.drain(client, "n2")
    assert drained.hostname == "n2"
    assert manager.nodes.updates == [
        ("wrk0000000000000000000002", 7, {"Role": "worker", "Availability": "drain"})
    ]
    # Removing it while it still takes tasks is refused and changes nothing.
    with pytest.raises(Conflict) as refused:
        await nodes.remove(client, "n2")
    assert refused.value.field == "node" and "drain it first" in refused.value.message
    assert manager.nodes.removed == []
    manager.nodes.items = [MANAGER, {**WORKER, "Spec": {"Role": "worker", "Availability": "drain"}}]
    await nodes.remove(client, "wrk0000000000000000000002")
    assert manager.nodes.removed == ["wrk0000000000000000000002"]


async def test_refusals_name_the_node_field_and_change_nothing(swarm):
    manager, client = swarm
    with pytest.raises(NotFound) as unknown:
        await nodes.drain(client, "n9")
    assert unknown.value.field == "node"
    with pytest.raises(Conflict) as manager_node:
        await nodes.remove(client, "n1")
    assert manager_node.value.field == "node" and "manager" in manager_node.value.message
    assert manager.nodes.updates == [] and manager.nodes.removed == []


async def test_one_engine_has_no_nodes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAASTECH_INTERNAL_KEY", "node-rpcs-test-" + "k" * 40)
    get_settings.cache_clear()
    server, client = await serve(DockerRuntime(Settings()))
    try:
        with pytest.raises(Unavailable) as listing:
            await nodes.list_nodes(client)
        assert "one Docker engine" in listing.value.message
        with pytest.raises(Conflict) as drain:
            await nodes.drain(client, "n2")
        assert drain.value.field == "node"
    finally:
        await client.close()
        await server.stop(None)
        get_settings.cache_clear()
