"""The projects' named volumes on the host engine (issue 15): created on first use with the
project's labels, given to the container's non-root user, listed with their sizes and removed
only when they are the project's and no container uses them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiodocker
from aiodocker.exceptions import DockerError
from aiodocker.volumes import DockerVolume

from backend import labels as L
from backend.engine.inspect import inspect_volume, listed_name, parse_time, volume_sizes
from backend.engine.logs import last_lines
from backend.pomegranate.container_config import volume_init_config
from backend.pomegranate.containers import remove_container
from backend.pomegranate.runtime import Mount, NotOwned, ProcessSpec, VolumeInfo, VolumeInUse
from backend.settings import Settings

VOLUME_INIT_SECONDS = 60


class VolumeError(Exception):
    """A project volume could not be prepared, or a same-named volume is not the project's."""


class ProjectVolumes:
    """The projects' volumes on one engine; remembers which it gave to which user."""

    def __init__(self, settings: Settings, docker: Callable[[], aiodocker.Docker]) -> None:
        self.settings = settings
        self._docker = docker
        # Volumes given to a user by this process: (volume, uid:gid). One preparation at a time
        # per volume (the replicas of a release start together).
        self._owners: set[tuple[str, str]] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    async def prepare_mounts(self, spec: ProcessSpec, user: str) -> None:
        for mount in spec.mounts:
            await self.ensure(spec.project, mount, user)

    async def ensure(self, project: str, mount: Mount, user: str) -> None:
        """The project volume of ``mount``, created on first use with the project's labels and
        given to ``user`` (the container's uid:gid): the app runs as a non-root user, and a new
        volume's root belongs to root. A same-named volume that is not the project's is refused."""
        docker = self._docker()
        name = mount.docker_name
        async with self._locks.setdefault(name, asyncio.Lock()):
            labels = L.volume_labels(project, mount.volume, instance=self.settings.instance)
            data = await inspect_volume(docker, name)
            if data is None:
                await docker.volumes.create({"Name": name, "Driver": "local", "Labels": labels})
                data = await inspect_volume(docker, name)
            found = (data or {}).get("Labels") or {}
            if data is None or any(found.get(k) != v for k, v in labels.items()):
                raise VolumeError(f"volume {name} exists but is not project {project}'s")
            if (name, user) not in self._owners:
                await self._give(name, user)
                self._owners.add((name, user))

    async def _give(self, name: str, user: str) -> None:
        """chown the volume's root to ``user`` in a short-lived container (volume_init_config)."""
        try:
            config = volume_init_config(name, user, self.settings)
        except ValueError as exc:
            raise VolumeError(str(exc)) from None
        docker = self._docker()
        container = await docker.containers.create(config)
        try:
            await container.start()
            result = await asyncio.wait_for(container.wait(), timeout=VOLUME_INIT_SECONDS)
            code = int(result.get("StatusCode", -1))
            if code != 0:
                lines = await last_lines(docker, container.id, 5)
                raise VolumeError(
                    f"could not prepare volume {name} (exit {code}): {' '.join(lines)}"
                )
        finally:
            await asyncio.shield(remove_container(docker, container.id))

    async def list_volumes(
        self, projects: list[str] | None = None, *, sizes: bool = False
    ) -> list[VolumeInfo]:
        """The project volumes of this instance (of ``projects`` when given), with their sizes as
        the engine's disk usage reports them (-1 when it does not say)."""
        docker = self._docker()
        filters = [*L.instance_filters(self.settings.instance), L.VOLUME]
        listed = await docker.volumes.list(filters={"label": filters})
        wanted = None if projects is None else set(projects)
        found: list[VolumeInfo] = []
        for data in listed.get("Volumes") or []:
            labels = data.get("Labels") or {}
            project = labels.get(L.PROJECT, "")
            if wanted is not None and project not in wanted:
                continue
            found.append(
                VolumeInfo(
                    project=project,
                    volume=labels.get(L.VOLUME, ""),
                    docker_name=data["Name"],
                    size_bytes=-1,
                    created_at=parse_time(data.get("CreatedAt")),
                )
            )
        if found and sizes:
            measured = await volume_sizes(docker)
            for info in found:
                info.size_bytes = measured.get(info.docker_name, -1)
        return sorted(found, key=lambda v: (v.project, v.volume, v.docker_name))

    async def remove(self, project: str, docker_name: str) -> None:
        """Remove one of the project's volumes; a missing one is fine. NotOwned for another's,
        VolumeInUse while a container (of any state) still has it."""
        docker = self._docker()
        data = await inspect_volume(docker, docker_name)
        if data is None:
            return
        labels = data.get("Labels") or {}
        expected = L.ownership_labels(project, instance=self.settings.instance)
        if L.VOLUME not in labels or any(labels.get(k) != v for k, v in expected.items()):
            raise NotOwned(f"volume {docker_name} is not one of {project}'s")
        users = await docker.containers.list(all=True, filters={"volume": [docker_name]})
        if users:
            names = ", ".join(sorted(listed_name(c) for c in users))
            raise VolumeInUse(f"volume {docker_name} is in use by {names}")
        try:
            await DockerVolume(docker, docker_name).delete()
        except DockerError as exc:
            if exc.status == 409:
                raise VolumeInUse(f"volume {docker_name} is in use: {exc.message}") from None
            if exc.status != 404:
                raise
        self._owners = {o for o in self._owners if o[0] != docker_name}
