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


def _running(task: Mapping[str, Any]) -> bool:
    return (task.get("Status") or {}).get("State") == "running"


def join_command(token: str, manager_address: str) -> str:
    return f"docker swarm join --token {shlex.quote(token)} {shlex.quote(manager_address)}"


class SwarmNodes:
    """Node operations on the Swarm of ``manager`` (tasks counted for ``instance`` only)."""

    def __init__(self, manager: aiodocker.Docker, instance: str) -> None:
        self.manager = manager
        self.instance = instance

    async def _wanted_tasks(self) -> list[Mapping[str, Any]]:
        """Our tasks Swarm wants running (running, or still starting)."""
        tasks = await self.manager.tasks.list(
            filters={"desired-state": ["running"], "label": L.instance_filters(self.instance)}
        )
        return list(tasks or [])

    async def _running_tasks(self) -> list[Mapping[str, Any]]:
        return [t for t in await self._wanted_tasks() if _running(t)]

    async def list(self) -> list[NodeInfo]:
        nodes = await self.manager.nodes.list()
        per_node: dict[str, int] = {}
        for task in await self._running_tasks():
            node_id = str(task.get("NodeID") or "")
            per_node[node_id] = per_node.get(node_id, 0) + 1
        found = [node_info(n, per_node.get(str(n["ID"]), 0)) for n in nodes or []]
        return sorted(found, key=lambda n: (n.role != "manager", n.hostname, n.id))

    async def get(self, ref: str) -> NodeInfo:
        """The node whose id or hostname is ``ref`` (exactly: no prefix matching). A hostname
        that several nodes share is refused: the operator names one by its id."""
        found = await self.list()
        for node in found:
            if node.id == ref:
                return node
        named = [n for n in found if n.hostname == ref]
        if len(named) > 1:
            raise NodeError(f"{len(named)} nodes are named {ref!r}: give the node's id")
        if named:
            return named[0]
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
        """Stop scheduling on the node and wait until its tasks have moved: none of ours runs
        there any more and every task Swarm wants elsewhere runs (healthy). Raises NodeError
        when that does not happen within ``timeout`` seconds (the node stays drained)."""
        node = await self.get(ref)
        if node.availability != "drain":
            await self._set_availability(node, "drain")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            there, missing = await self._not_moved(node.id)
            if not there and not missing:
                return await self.get(node.id)
            if loop.time() >= deadline:
                raise NodeError(
                    f"{node.hostname or node.id}: after {timeout:g}s {there} task(s) still "
                    f"run there and {missing} replica(s) do not run elsewhere yet"
                )
            await asyncio.sleep(DRAIN_POLL_SECONDS)

    async def _not_moved(self, node_id: str) -> tuple[int, int]:
        """Our tasks still running on ``node_id``, and the replicas of our services that do not
        run on another node yet (Swarm creates a replacement a moment after the drain)."""
        services = await self.manager.services.list(
            filters={"label": L.instance_filters(self.instance)}
        )
        replicas = sum(
            int(((s.get("Spec") or {}).get("Mode") or {}).get("Replicated", {}).get("Replicas", 0))
            for s in services or []
        )
        running = await self._running_tasks()
        there = sum(1 for t in running if t.get("NodeID") == node_id)
        return there, max(0, replicas - (len(running) - there))

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
