"""Traefik on a real Swarm (issue 16): connecting Traefik to each project's overlay network.

Traefik v3's Swarm provider routes to a task at its address on the network the service's
``traefik.swarm.network`` label names (the project's overlay, ``<instance>_<project>``), so Traefik
must be on every project's overlay, and on no network it does not route to. It runs as a
standalone container on a manager (traefik/compose.swarm.yaml: container ``paastech-traefik``,
``PAASTECH_SWARM_TRAEFIK_CONTAINER``), not as a Swarm service: joining a network is a live
``network connect`` for a container, where a service would be updated and its task replaced (a
gap in all routing at every new project). A standalone container can join only an attachable
overlay, so SwarmRuntime creates the overlays attachable when this is configured (only the
platform starts containers on the nodes: tenants have no Docker access).
"""

from __future__ import annotations

import aiodocker
from aiodocker.exceptions import DockerError


async def attach(manager: aiodocker.Docker, container: str, network: str) -> None:
    """Connect ``container`` (on the manager's engine) to ``network``; already connected is fine."""
    try:
        await (await manager.networks.get(network)).connect({"Container": container})
    except DockerError as exc:
        # 403/409 "already exists in network" / "endpoint ... already exists": connected.
        if exc.status not in (403, 409) or "already" not in exc.message:
            raise


async def detach(manager: aiodocker.Docker, container: str, network: str) -> None:
    """Disconnect ``container`` from ``network`` (before the network goes); not on it is fine."""
    try:
        await (await manager.networks.get(network)).disconnect(
            {"Container": container, "Force": True}
        )
    except DockerError as exc:
        if exc.status not in (404, 403, 409):
            raise


async def attached(manager: aiodocker.Docker, container: str) -> set[str]:
    """The names of the networks ``container`` is connected to."""
    data = await manager.containers.container(container).show()
    return set(((data.get("NetworkSettings") or {}).get("Networks") or {}).keys())
