"""Container sampling in Pomegranate: one engine stats call per running app container
(stream=0: the engine answers one reading with the previous one beside it), a few at a time.

Takes the aiodocker client (not the runtime) so it stays out of docker_runtime.py."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from backend import labels as L

log = logging.getLogger(__name__)

# Swarm names a task's container "<service>.<slot>.<task id>" (this label); the slot is the
# replica (swarm_runtime.py puts no replica label on a service: one spec for all its tasks).
SWARM_TASK_NAME = "com.docker.swarm.task.name"
CONCURRENCY = 8  # stats calls in flight at once: each takes the engine about a second
STATS_TIMEOUT_SECONDS = 8.0


@dataclass(slots=True)
class ContainerSample:
    project: str
    application: int
    process: str
    replica: int
    container_id: str
    cpu_cores: float
    memory_bytes: int
    memory_limit_bytes: int
    net_rx_bytes_per_second: float
    net_tx_bytes_per_second: float
    restarts: int
    read_at: str


def ownership_of(labels: dict[str, str]) -> L.Ownership | None:
    """A container's ownership from its labels; a Swarm task's replica from its slot."""
    ownership = L.parse_labels(labels)
    if ownership is not None or L.REPLICA in labels:
        return ownership
    parts = str(labels.get(SWARM_TASK_NAME) or "").rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return L.parse_labels({**labels, L.REPLICA: parts[1]})


def cpu_cores(stats: dict[str, Any]) -> float:
    """Cores in use between the engine's two readings, the way `docker stats` computes it."""
    cpu = stats.get("cpu_stats") or {}
    pre = stats.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get(
        "total_usage", 0
    )
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or ())
    if used <= 0 or system <= 0 or not online:
        return 0.0
    return float(used / system * online)  # the engine's JSON is untyped


def memory_bytes(stats: dict[str, Any]) -> int:
    """Usage without the reclaimable page cache (cgroup v2 inactive_file, v1
    total_inactive_file), as `docker stats` shows it."""
    memory = stats.get("memory_stats") or {}
    usage = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
    return max(0, usage - int(cache or 0))


def network_bytes(stats: dict[str, Any]) -> tuple[int, int]:
    networks = stats.get("networks") or {}
    rx = sum(int(n.get("rx_bytes") or 0) for n in networks.values())
    tx = sum(int(n.get("tx_bytes") or 0) for n in networks.values())
    return rx, tx


def _read_time(stats: dict[str, Any]) -> float | None:
    text = str(stats.get("read") or "")
    if not text or text.startswith("0001-"):
        return None
    # The engine writes nanoseconds; Python parses microseconds.
    head, _, rest = text.partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    zone = "+00:00" if rest.endswith("Z") or not rest else rest[len(rest.rstrip("+-:0123456789")) :]
    try:
        return datetime.fromisoformat(f"{head}.{fraction or '0'}{zone}").timestamp()
    except ValueError:
        return None


class ContainerSampler:
    """Keeps, between samples, what rates and restarts need: each container's last network
    counters, and which container held each replica slot (a new container in a slot of the same
    release is a restart: Pomegranate replaces a crashed container with a new one)."""

    def __init__(self, docker: aiodocker.Docker, instance: str) -> None:
        self.docker = docker
        self.instance = instance
        self._network: dict[str, tuple[float, int, int]] = {}
        self._slots: dict[tuple[str, int, str, int], str] = {}
        self._restarts: dict[tuple[str, int, str, int], int] = {}

    async def sample(self) -> list[ContainerSample]:
        listed = await self.docker.containers.list(
            filters={"label": L.instance_filters(self.instance), "status": ["running"]}
        )
        owned: list[tuple[str, L.Ownership]] = []
        for container in listed:
            container_labels = container._container.get("Labels") or {}
            ownership = ownership_of(container_labels)
            if ownership is not None and L.ONEOFF not in container_labels:
                owned.append((container.id, ownership))
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(container_id: str, ownership: L.Ownership) -> ContainerSample | None:
            async with gate:
                try:
                    found = await self.docker.containers.container(container_id).stats(
                        stream=False, timeout=STATS_TIMEOUT_SECONDS
                    )
                except (DockerError, TimeoutError) as exc:
                    log.debug("no stats for %s: %s", container_id[:12], exc)
                    return None
            if not found:
                return None
            return self._sample(container_id, ownership, found[0])

        results = await asyncio.gather(*(one(cid, own) for cid, own in owned))
        self._forget_old_slots(owned)
        alive = {cid for cid, _ in owned}
        for cid in list(self._network):
            if cid not in alive:
                del self._network[cid]
        return [r for r in results if r is not None]

    def _sample(
        self, container_id: str, ownership: L.Ownership, stats: dict[str, Any]
    ) -> ContainerSample:
        slot = (ownership.project, ownership.application, ownership.process, ownership.replica)
        previous = self._slots.get(slot)
        if previous is not None and previous != container_id:
            self._restarts[slot] = self._restarts.get(slot, 0) + 1
        self._slots[slot] = container_id
        rx, tx = network_bytes(stats)
        at = _read_time(stats)
        rx_rate = tx_rate = 0.0
        last = self._network.get(container_id)
        if at is not None:
            if last is not None and at > last[0] and rx >= last[1] and tx >= last[2]:
                rx_rate = (rx - last[1]) / (at - last[0])
                tx_rate = (tx - last[2]) / (at - last[0])
            self._network[container_id] = (at, rx, tx)
        limit = int((stats.get("memory_stats") or {}).get("limit") or 0)
        return ContainerSample(
            project=ownership.project,
            application=ownership.application,
            process=ownership.process,
            replica=ownership.replica,
            container_id=container_id,
            cpu_cores=cpu_cores(stats),
            memory_bytes=memory_bytes(stats),
            memory_limit_bytes=limit,
            net_rx_bytes_per_second=rx_rate,
            net_tx_bytes_per_second=tx_rate,
            restarts=self._restarts.get(slot, 0),
            read_at=str(stats.get("read") or ""),
        )

    def _forget_old_slots(self, owned: list[tuple[str, L.Ownership]]) -> None:
        """Slots of releases older than a project's newest running one are done with (bounded
        memory); a project with nothing running keeps its slots (its crashed replica may come
        back in the same slot)."""
        newest: dict[str, int] = {}
        for _, own in owned:
            newest[own.project] = max(newest.get(own.project, 0), own.application)
        for table in (self._slots, self._restarts):
            for slot in [s for s in table if s[1] < newest.get(s[0], 0)]:
                del table[slot]
