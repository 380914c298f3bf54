"""Keeps the RouteTable in step with a Docker Swarm (issue 16), for the Swarm runtime.

Swarm's event stream has no task events, so this polls the manager (services of this
installation, their tasks, the nodes) every POLL_SECONDS and replaces the table. A task is routed
while Swarm wants it running and it runs: Swarm only reports a task with a health check as running
once it is healthy, so no probe of our own is needed. Its upstream is its node's address and the
ephemeral port its web port is published on there (``PublishMode: host``): no routing mesh, no
VIP. A task Swarm is stopping (desired state shutdown) leaves the rotation at the next poll; a
request that still reaches it meanwhile is refused and the proxy retries the next replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiodocker

from backend import labels as L
from backend.ingress.routes import Container, RouteTable, Upstream, normalise_host

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
ERROR_BACKOFF_SECONDS = 2.0


def containers_from_swarm(
    services: Sequence[Mapping[str, Any]],
    tasks: Sequence[Mapping[str, Any]],
    nodes: Mapping[str, str],
) -> list[Container]:
    """The routed tasks (as Containers) of ``services`` (ours, with routing labels); ``nodes``:
    node id -> address."""
    by_id = {s["ID"]: s for s in services}
    result: list[Container] = []
    for task in tasks:
        service = by_id.get(task.get("ServiceID", ""))
        if service is None:
            continue
        spec = service.get("Spec") or {}
        labels = dict(spec.get("Labels") or {})
        slot = int(task.get("Slot") or 0)
        labels[L.REPLICA] = str(slot)
        ownership = L.parse_labels(labels)
        routes = L.routes_from_labels(labels)
        if ownership is None or routes is None or slot < 1:
            continue
        hostnames, container_port = routes
        status = task.get("Status") or {}
        running = status.get("State") == "running" and task.get("DesiredState") == "running"
        ports = (status.get("PortStatus") or {}).get("Ports") or []
        published = next(
            (
                int(p["PublishedPort"])
                for p in ports
                if p.get("PublishedPort") and p.get("TargetPort") == container_port
            ),
            None,
        )
        node = nodes.get(task.get("NodeID", ""), "")
        result.append(
            Container(
                id=str(task["ID"]),
                name=f"{spec.get('Name', '')}.{slot}",
                project=ownership.project,
                application=ownership.application,
                replica=slot,
                hostnames=tuple(dict.fromkeys(normalise_host(h) for h in hostnames)),
                container_port=container_port,
                host_port=published if running and node else None,
                running=running,
                health="healthy" if running else None,
                health_path=L.health_path_from_labels(labels),
                hsts_seconds=L.hsts_from_labels(labels),
                started_at=str(status.get("Timestamp") or ""),
                upstream_host=node or "127.0.0.1",
            )
        )
    return result


class SwarmDiscovery:
    def __init__(
        self, manager: aiodocker.Docker, table: RouteTable, instance: str = L.DEFAULT_INSTANCE
    ) -> None:
        self.manager = manager
        self.table = table
        self.label_filters = L.instance_filters(instance)
        self.ready = asyncio.Event()  # set after the first full listing

    async def run(self) -> None:
        """Poll until cancelled; a failed poll keeps the last table and tries again."""
        while True:
            try:
                await self.resync()
                await asyncio.sleep(POLL_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("swarm listing failed: %s; retrying", exc)
                await asyncio.sleep(ERROR_BACKOFF_SECONDS)

    async def resync(self) -> None:
        services = [
            dict(s) for s in await self.manager.services.list(filters={"label": self.label_filters})
        ]
        tasks: list[Any] = []
        if services:
            names = [s["Spec"]["Name"] for s in services]
            filters = {"service": names, "desired-state": ["running"]}
            tasks = [dict(t) for t in await self.manager.tasks.list(filters=filters)]
        nodes = {
            n["ID"]: (n.get("Status") or {}).get("Addr", "")
            for n in await self.manager.nodes.list() or []
        }
        before = self.table.hosts()
        self.table.sync(containers_from_swarm(services or [], tasks or [], nodes))
        log_changes(before, self.table.hosts())
        self.ready.set()


def log_changes(before: Mapping[str, list[Upstream]], after: Mapping[str, list[Upstream]]) -> None:
    """One line per host whose routable replicas changed: what an operator (or a failed test)
    reads to know where requests went while Swarm moved tasks."""
    for host in sorted(before.keys() | after.keys()):
        old, new = before.get(host, []), after.get(host, [])
        if {u.base_url for u in old} != {u.base_url for u in new}:
            log.info("%s: routed to %s", host, ", ".join(u.base_url for u in new) or "nothing")
