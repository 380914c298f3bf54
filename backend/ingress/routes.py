"""The embedded ingress's routing table: hostname -> the replicas that may serve it.

Pure (no I/O): discovery.py feeds it from Docker inspect data and events; proxy.py looks hosts up.

A container is *known* while it exists and carries our routing labels (any state), so a host whose
containers are all stopped or starting answers 503 rather than 404. It is *routable* only when it
is running, has a published port, is not being stopped (the drain), answered the ingress's
readiness probe, and, when it has a Docker health check, is healthy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from backend import labels as L

UPSTREAM_HOST = "127.0.0.1"
# Host IPs of a port binding the ingress (on the host) can reach through 127.0.0.1.
_LOOPBACK_REACHABLE = ("127.0.0.1", "0.0.0.0", "")


def normalise_host(host: str | None) -> str:
    """A Host header as a table key: lowercase, without port and trailing dot."""
    if not host:
        return ""
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, maybe with a port
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


@dataclass(frozen=True, slots=True)
class Upstream:
    container_id: str
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Container:
    """What the table needs to know of one routed container (from Docker inspect data)."""

    id: str
    name: str
    project: str
    application: int
    replica: int
    hostnames: tuple[str, ...]
    container_port: int
    host_port: int | None  # published on 127.0.0.1; None when not running / not published
    running: bool
    health: str | None  # Docker health status ("starting", "healthy", "unhealthy"); None: no check
    health_path: str | None = None  # the Traefik health-check path from the labels, if any
    hsts_seconds: int = 0  # the project's HSTS max-age from the labels; 0: none (issue 21)
    # State.StartedAt: tells a new process of the same container (restarted while the event
    # stream was down, e.g. by a dockerd restart) from the one a stop event was about.
    started_at: str = ""
    # Where host_port is published: loopback on one engine; a Swarm task's node (issue 16).
    upstream_host: str = UPSTREAM_HOST

    @property
    def upstream(self) -> Upstream | None:
        if self.host_port is None:
            return None
        return Upstream(self.id, self.upstream_host, self.host_port)


def published_port(data: Mapping[str, Any], container_port: int) -> int | None:
    """The host port that the container's ``container_port``/tcp is published on for loopback."""
    ports = (data.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = ports.get(f"{container_port}/tcp") or []
    for binding in bindings:
        if (binding.get("HostIp") or "") in _LOOPBACK_REACHABLE and binding.get("HostPort"):
            try:
                return int(binding["HostPort"])
            except ValueError:
                continue
    return None


def container_from_inspect(data: Mapping[str, Any]) -> Container | None:
    """A routed container from ``GET /containers/<id>/json``; None when it is not one of ours
    with routing labels (``traefik.enable=true``)."""
    config = data.get("Config") or {}
    labels = config.get("Labels") or {}
    ownership = L.parse_labels(labels)
    routes = L.routes_from_labels(labels)
    if ownership is None or routes is None:
        return None
    hostnames, container_port = routes
    state = data.get("State") or {}
    running = bool(state.get("Running")) and not state.get("Restarting") and not state.get("Paused")
    health = (state.get("Health") or {}).get("Status") if state.get("Health") else None
    return Container(
        id=data["Id"],
        name=(data.get("Name") or "").lstrip("/"),
        project=ownership.project,
        application=ownership.application,
        replica=ownership.replica,
        hostnames=tuple(dict.fromkeys(normalise_host(h) for h in hostnames)),
        container_port=container_port,
        host_port=published_port(data, container_port) if running else None,
        running=running,
        health=health or None,
        health_path=L.health_path_from_labels(labels),
        hsts_seconds=L.hsts_from_labels(labels),
        started_at=str(state.get("StartedAt") or ""),
    )


@dataclass(frozen=True, slots=True)
class Route:
    """The answer for a known host: its routable upstreams, in the order to try them."""

    host: str
    upstreams: list[Upstream]
    hsts_seconds: int = 0  # from the newest routed release's labels
    project: str = ""  # issue 18: whose requests these are (metrics)


@dataclass(slots=True)
class _Entry:
    container: Container
    ready: bool  # answered the ingress's readiness probe (or has a Docker health check)
    stopping: bool  # kill/stop/die seen and no start since: never routed (the drain)


class RouteTable:
    """Hostname -> replicas, with round robin. Mutated by discovery, read by the proxy; all on one
    event loop, so no locking."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._hosts: dict[str, list[str]] = {}  # host -> container ids (known, any state)
        self._next: dict[str, int] = {}
        # Custom hostname -> the project's default hostname (backend/routing.py): a custom
        # domain routes exactly as the default hostname of its project.
        self._aliases: dict[str, str] = {}

    # ------------------------------------------------------------------------------- reading

    def lookup(self, host: str | None, *, rotate: bool = True) -> Route | None:
        """None for an unknown host; else its routable upstreams rotated for round robin (the
        list is empty when the host is known but nothing can serve it now). ``rotate=False``
        reads without moving the rotation on (a retry of the same request)."""
        key = normalise_host(host)
        ids = self._hosts.get(key) or self._hosts.get(self._aliases.get(key, ""))
        if not ids:
            return None
        upstreams = [
            upstream
            for cid in ids
            if self._routable(self._entries[cid])
            and (upstream := self._entries[cid].container.upstream) is not None
        ]
        if len(upstreams) > 1:
            start = self._next.get(key, 0) % len(upstreams)
            if rotate:
                self._next[key] = start + 1
            upstreams = upstreams[start:] + upstreams[:start]
        newest = max((self._entries[cid].container for cid in ids), key=lambda c: c.application)
        return Route(key, upstreams, newest.hsts_seconds, newest.project)

    def get(self, container_id: str) -> Container | None:
        entry = self._entries.get(container_id)
        return entry.container if entry else None

    def is_routable(self, container_id: str) -> bool:
        entry = self._entries.get(container_id)
        return entry is not None and self._routable(entry)

    def needs_probe(self, container_id: str) -> bool:
        """Running, not stopping, without Docker health check, and not yet ready."""
        entry = self._entries.get(container_id)
        if entry is None or entry.ready or entry.stopping:
            return False
        c = entry.container
        return c.running and c.host_port is not None and c.health is None

    def hosts(self) -> dict[str, list[Upstream]]:
        """Every known host with its routable upstreams: the hosts of the labels, and the custom
        domains aliased to one of them (the certificate manager certifies exactly these)."""
        result: dict[str, list[Upstream]] = {}
        for host, ids in self._hosts.items():
            result[host] = [
                u
                for cid in ids
                if self._routable(self._entries[cid])
                and (u := self._entries[cid].container.upstream) is not None
            ]
        for alias, target in self._aliases.items():
            if target in result and alias not in result:
                result[alias] = result[target]
        return result

    def container_ids(self) -> set[str]:
        return set(self._entries)

    @staticmethod
    def _routable(entry: _Entry) -> bool:
        c = entry.container
        if not c.running or c.host_port is None or entry.stopping:
            return False
        if c.health is not None:
            return c.health == "healthy"
        return entry.ready

    # ------------------------------------------------------------------------------- changes

    def upsert(self, container: Container, *, ready: bool = False) -> None:
        """Add or refresh a container. Its readiness is kept when it is the same running process
        on the same port; a container with a Docker health check needs no probe."""
        old = self._entries.get(container.id)
        keep_ready = (
            old is not None
            and old.ready
            and old.container.running
            and container.running
            and old.container.host_port == container.host_port
        )
        stopping = old.stopping if old is not None else False
        self._entries[container.id] = _Entry(
            container=container,
            ready=ready or keep_ready or container.health is not None,
            stopping=stopping,
        )
        self._reindex()

    def set_ready(self, container_id: str, ready: bool = True) -> None:
        entry = self._entries.get(container_id)
        if entry is not None:
            entry.ready = ready

    def set_health(self, container_id: str, status: str) -> bool:
        """Apply a health_status event; False when the container is unknown."""
        entry = self._entries.get(container_id)
        if entry is None:
            return False
        entry.container = replace(entry.container, health=status or None)
        entry.ready = True
        return True

    def mark_stopping(self, container_id: str) -> bool:
        """kill / stop / die: out of rotation at once, until a start. False when unknown."""
        entry = self._entries.get(container_id)
        if entry is None:
            return False
        entry.stopping = True
        return True

    def clear_stopping(self, container_id: str) -> None:
        entry = self._entries.get(container_id)
        if entry is not None:
            entry.stopping = False
            entry.ready = False  # a new process: probe it again

    def set_aliases(self, aliases: dict[str, str]) -> None:
        """Replace the custom-domain table (custom hostname -> default hostname)."""
        self._aliases = {normalise_host(k): normalise_host(v) for k, v in aliases.items()}

    def remove(self, container_id: str) -> bool:
        """destroy: forget the container (its hosts may become unknown)."""
        if self._entries.pop(container_id, None) is None:
            return False
        self._reindex()
        return True

    def sync(self, containers: Iterable[Container], *, trust_running: bool = False) -> None:
        """Replace the table with a full listing. Stopping marks and readiness of containers
        still present are kept; with ``trust_running`` (the first listing at start-up) running
        containers count as ready without a probe."""
        fresh: dict[str, _Entry] = {}
        for c in containers:
            old = self._entries.get(c.id)
            # Started again since we last saw it (its start event was missed): a new process,
            # no longer stopping, probed before it is routed.
            restarted = old is not None and c.running and c.started_at != old.container.started_at
            same_process = (
                old is not None
                and old.container.running
                and c.running
                and old.container.host_port == c.host_port
                and not restarted
            )
            ready = (
                c.health is not None
                or (trust_running and c.running)
                or (same_process and old is not None and old.ready)
            )
            stopping = old is not None and old.stopping and not restarted
            fresh[c.id] = _Entry(c, ready=ready, stopping=stopping)
        self._entries = fresh
        self._reindex()

    def _reindex(self) -> None:
        hosts: dict[str, list[str]] = {}
        # Stable order (oldest application, then replica) so round robin is predictable.
        ordered = sorted(
            self._entries.values(),
            key=lambda e: (e.container.project, e.container.application, e.container.replica),
        )
        for entry in ordered:
            for host in entry.container.hostnames:
                hosts.setdefault(host, []).append(entry.container.id)
        self._hosts = hosts
        for host in list(self._next):
            if host not in hosts:
                del self._next[host]
