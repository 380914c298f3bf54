"""The Swarm's nodes, for the operator (issue 16): list them with their state, availability,
tasks and resources; the command a new machine runs to join; drain one (Swarm moves its tasks
elsewhere); remove one. Everything goes through the manager's API (aiodocker's public nodes,
tasks and swarm calls); Pomegranate serves it over gRPC, the API only to the operator.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from backend import labels as L

DRAIN_POLL_SECONDS = 0.5


class NodeError(Exception):
    """An operation the node's state does not allow (the message says why and what to do)."""


class NodeNotFound(NodeError):
    pass


@dataclass(frozen=True)
class NodeInfo:
    id: str
    hostname: str
    role: str  # manager | worker
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    address: str
    leader: bool
    tasks: int  # running tasks of this instance's services on the node
    nano_cpus: int
    memory_bytes: int
    engine_version: str


def node_info(node: Mapping[str, Any], tasks: int) -> NodeInfo:
    spec = node.get("Spec") or {}
    description = node.get("Description") or {}
    resources = description.get("Resources") or {}
    status = node.get("Status") or {}
    manager = node.get("ManagerStatus") or {}
    return NodeInfo(
        id=str(node["ID"]),
        hostname=str(description.get("Hostname") or ""),
        role=str(spec.get("Role") or ""),
        state=str(status.get("State") or "unknown"),
        availability=str(spec.get("Availability") or ""),
        address=str(status.get("Addr") or ""),
        leader=bool(manager.get("Leader")),
        tasks=tasks,
        nano_cpus=int(resources.get("NanoCPUs") or 0),
        memory_bytes=int(resources.get("MemoryBytes") or 0),
        engine_version=str((description.get("Engine") or {}).get("EngineVersion") or ""),
    )


def join_command(token: str, manager_address: str) -> str:
    return f"docker swarm join --token {shlex.quote(token)} {shlex.quote(manager_address)}"


class SwarmNodes:
    """Node operations on the Swarm of ``manager`` (tasks counted for ``instance`` only)."""

    def __init__(self, manager: aiodocker.Docker, instance: str) -> None:
        self.manager = manager
        self.instance = instance

    async def _running_tasks(self) -> list[Mapping[str, Any]]:
        tasks = await self.manager.tasks.list(
            filters={"desired-state": ["running"], "label": L.instance_filters(self.instance)}
        )
        return [t for t in tasks or [] if (t.get("Status") or {}).get("State") == "running"]

    async def list(self) -> list[NodeInfo]:
        nodes = await self.manager.nodes.list()
        per_node: dict[str, int] = {}
        for task in await self._running_tasks():
            node_id = str(task.get("NodeID") or "")
            per_node[node_id] = per_node.get(node_id, 0) + 1
        found = [node_info(n, per_node.get(str(n["ID"]), 0)) for n in nodes or []]
        return sorted(found, key=lambda n: (n.role != "manager", n.hostname, n.id))

    async def get(self, ref: str) -> NodeInfo:
        """The node whose id or hostname is ``ref`` (exactly: no prefix matching)."""
        for node in await self.list():
            if ref in (node.id, node.hostname):
                return node
        raise NodeNotFound(f"no node {ref!r} in the swarm")

    async def join_command(self) -> str:
        """What a new machine runs to join as a worker (the token is a secret: operator only)."""
        swarm = await self.manager.swarm.inspect()
        token = str(((swarm.get("JoinTokens") or {}).get("Worker")) or "")
        nodes = await self.manager.nodes.list(filters={"role": "manager"})
        statuses = [n.get("ManagerStatus") or {} for n in nodes or []]
        # The leader's address first: any manager works, the leader is the one surely up.
        statuses.sort(key=lambda m: not m.get("Leader"))
        addresses = [str(m.get("Addr") or "") for m in statuses]
        address = next((a for a in addresses if a), "")
        if not token or not address:
            raise NodeError("the manager gave no worker join token or address")
        return join_command(token, address)

    async def _set_availability(self, node: NodeInfo, availability: str) -> None:
        data = await self.manager.nodes.inspect(node_id=node.id)
        spec = dict(data.get("Spec") or {})
        spec["Availability"] = availability
        version = int((data.get("Version") or {}).get("Index") or 0)
        await self.manager.nodes.update(node_id=node.id, version=version, spec=spec)

    async def drain(self, ref: str, timeout: float = 120) -> NodeInfo:  # noqa: ASYNC109
        """Stop scheduling on the node and wait until none of our tasks runs there any more
        (Swarm starts replacements on the other nodes). Raises NodeError when that does not
        happen within ``timeout`` seconds (the node stays drained)."""
        node = await self.get(ref)
        if node.availability != "drain":
            await self._set_availability(node, "drain")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            node = await self.get(node.id)
            if node.tasks == 0:
                return node
            if loop.time() >= deadline:
                raise NodeError(
                    f"{node.hostname}: {node.tasks} task(s) still run after {timeout:g}s"
                )
            await asyncio.sleep(DRAIN_POLL_SECONDS)

    async def activate(self, ref: str) -> NodeInfo:
        """Let the scheduler use the node again (after a drain)."""
        node = await self.get(ref)
        if node.availability != "active":
            await self._set_availability(node, "active")
        return await self.get(node.id)

    async def remove(self, ref: str) -> None:
        """Remove a drained worker from the swarm. A manager is refused (demote it first: the
        managers hold the Raft quorum), and so is a node still taking tasks (drain it first)."""
        node = await self.get(ref)
        if node.role == "manager":
            raise NodeError(f"{node.hostname} is a manager: demote it first (docker node demote)")
        if node.availability != "drain":
            raise NodeError(f"{node.hostname} is {node.availability}: drain it first")
        try:
            # force: a drained node that is still up (it has not run `docker swarm leave`).
            await self.manager.nodes.remove(node_id=node.id, force=node.state != "down")
        except DockerError as exc:
            if exc.status == 404:
                raise NodeNotFound(f"no node {ref!r} in the swarm") from None
            raise
