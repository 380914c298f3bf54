"""Docker networks of the platform on the host engine: each project's bridge network, with a
subnet of its own from the pool (settings.project_network_pool), and the add-ons' internal
networks. A same-named network carrying other labels is never taken over. Before a network of
the pool is used, scripts/project-network-firewall.sh drops what is routed between two of them
(Docker's own isolation rules have a gap each time the engine creates a network; see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from backend import labels as L
from backend.engine.inspect import inspect_container
from backend.settings import Settings

log = logging.getLogger(__name__)

network_name = L.network_name

FIREWALL_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "project-network-firewall.sh"
_firewalled: set[str] = set()  # pools whose firewall this process installed


class NetworkError(Exception):
    """A project network could not be created or is not ours."""


async def ensure_firewall(settings: Settings) -> None:
    """Install the pool's firewall on this host (once per process; the script is idempotent and
    takes a lock, so concurrent installers are fine). Fails closed: NetworkError, and nothing
    is started on a network whose isolation is not in place. Off (project_network_firewall)
    only for an engine whose bridges are on another host, where its operator installs it."""
    pool = settings.project_network_pool
    if not settings.project_network_firewall or pool in _firewalled:
        return
    proc = await asyncio.create_subprocess_exec(
        str(FIREWALL_SCRIPT),
        "install",
        env={**os.environ, "PAASTECH_PROJECT_NETWORK_POOL": pool},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        detail = out.decode(errors="replace").strip()
        raise NetworkError(f"the project networks' firewall could not be set up: {detail}")
    _firewalled.add(pool)


async def get_network(docker: aiodocker.Docker, name: str) -> dict[str, Any] | None:
    """The network called exactly ``name`` as inspected; None when there is none."""
    try:
        network = await docker.networks.get(name)
        data: dict[str, Any] = await network.show()
    except DockerError as exc:
        if exc.status == 404:
            return None
        raise
    # The engine also matches ID prefixes: only an exact name is this network.
    return data if data.get("Name") == name else None


async def used_subnets(
    docker: aiodocker.Docker,
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    used = []
    for network in await docker.networks.list():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(ValueError, KeyError):
                used.append(ipaddress.ip_network(config["Subnet"], strict=False))
    return used


async def create_network(
    docker: aiodocker.Docker,
    settings: Settings,
    name: str,
    labels: dict[str, str],
    *,
    internal: bool = False,
) -> None:
    """Create bridge network ``name`` on the first free subnet of the pool, starting at a point
    derived from the name so that installations sharing the engine rarely try the same one; the
    engine refuses an overlapping subnet (another installation won the race) and we move on.
    Created concurrently under this name: returns, and the caller checks its labels."""
    pool = ipaddress.ip_network(settings.project_network_pool, strict=False)
    prefix = settings.project_network_prefix
    if pool.version != 4 or prefix < pool.prefixlen:
        raise NetworkError(f"project_network_pool {pool} must be IPv4 and hold /{prefix}s")
    count = 2 ** (prefix - pool.prefixlen)
    await ensure_firewall(settings)
    used = await used_subnets(docker)
    first = zlib.crc32(name.encode()) % count
    for i in range(count):
        index = (first + i) % count
        subnet = ipaddress.ip_network(
            (int(pool.network_address) + index * 2 ** (32 - prefix), prefix)
        )
        if any(subnet.overlaps(u) for u in used):
            continue
        try:
            await docker.networks.create(
                {
                    "Name": name,
                    "Driver": "bridge",
                    "CheckDuplicate": True,
                    "IPAM": {"Driver": "default", "Config": [{"Subnet": str(subnet)}]},
                    "Labels": labels,
                    "Internal": internal,
                }
            )
            return
        except DockerError as exc:
            if exc.status == 409 and "overlap" not in exc.message.lower():
                return  # created concurrently under this name; the caller checks its labels
            if "overlap" in exc.message.lower():
                used.append(subnet)
                continue
            raise
    raise NetworkError(f"no free /{prefix} left in {pool} for {name}")


async def delete_network(docker: aiodocker.Docker, name: str) -> None:
    """Remove network ``name``; a missing one is fine, one that still has endpoints is kept
    (logged: the next removal of the project's containers tries again)."""
    try:
        await (await docker.networks.get(name)).delete()
    except DockerError as exc:
        if exc.status in (403, 409):
            log.warning("network %s not removed: %s", name, exc.message)
        elif exc.status != 404:
            raise


class ProjectNetworks:
    """The projects' bridge networks on one engine (one creation at a time per network)."""

    def __init__(self, settings: Settings, docker: Callable[[], aiodocker.Docker]) -> None:
        self.settings = settings
        self._docker = docker
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, name: str) -> asyncio.Lock:
        """The lock held while network ``name`` is created (the Swarm's overlays use it too)."""
        return self._locks.setdefault(name, asyncio.Lock())

    def labels(self, project: str) -> dict[str, str]:
        """The labels that make a network ``project``'s, of this instance."""
        return L.ownership_labels(project, instance=self.settings.instance)

    async def ensure(self, project: str) -> str:
        """The project's bridge network, created with a subnet of its own from the pool when it
        does not exist. Refuses a same-named network that is not this project's (NetworkError)."""
        docker = self._docker()
        name = network_name(project, instance=self.settings.instance)
        wanted = self.labels(project)
        await ensure_firewall(self.settings)  # networks made before it was installed, too
        async with self.lock(name):
            existing = await get_network(docker, name)
            if existing is None:
                await create_network(docker, self.settings, name, wanted)
                existing = await get_network(docker, name)
            labels = (existing or {}).get("Labels") or {}
            if existing is None or any(labels.get(k) != v for k, v in wanted.items()):
                raise NetworkError(f"network {name} exists but is not project {project}'s")
        return name

    async def remove(self, project: str) -> None:
        """Remove the project's network (its containers must be gone); a missing one is fine."""
        docker = self._docker()
        name = network_name(project, instance=self.settings.instance)
        found = await get_network(docker, name)
        if found is None:
            return
        # Add-on servers (issue 15) are attached to the networks of their projects: they leave
        # this one, they are not removed with the project.
        for container_id in found.get("Containers") or {}:
            data = await inspect_container(docker, container_id)
            labels = ((data or {}).get("Config") or {}).get("Labels") or {}
            if labels.get(L.ADDON) and labels.get(L.INSTANCE) == self.settings.instance:
                with contextlib.suppress(DockerError):
                    await (await docker.networks.get(name)).disconnect(
                        {"Container": container_id, "Force": True}
                    )
        await delete_network(docker, name)
