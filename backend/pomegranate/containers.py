"""Removing a container on the host engine: the one rule every Pomegranate module follows."""

from __future__ import annotations

import aiodocker
from aiodocker.exceptions import DockerError


async def remove_container(docker: aiodocker.Docker, container_id: str) -> None:
    """Remove (killing it if needed) with its anonymous volumes. A missing container, or one
    whose removal is already in progress, is fine."""
    try:
        await docker.containers.container(container_id).delete(force=True, v=True)
    except DockerError as exc:
        if exc.status == 409 and "already in progress" in exc.message:
            return
        if exc.status != 404:
            raise
