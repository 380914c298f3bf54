"""Add-on servers on Docker (issue 15): one PostgreSQL or Redis container per add-on.

Each add-on has, all named <instance>.addon.<name> and labelled with the add-on:

* a named volume holding its data (mounted on /var/lib/paastech/data, the images'
  PGDATA / Redis working directory), kept across container re-creations;
* its own internal network (no route out), so the container exists even when attached nowhere;
* one container of the platform's image (paastech/postgres:15, paastech/redis:7, built by
  scripts/base-images.sh) running as the image's non-root user, with every capability dropped,
  no-new-privileges, memory (no swap), PID limits and the restart policy ``unless-stopped``
  (a crash or a dockerd restart brings it back; the data is on the volume).

Reachability: the container joins the bridge network of each attached project with the DNS
alias the add-on's URL uses; no other project's network, so another Client's app cannot even
resolve or route to it (docs/architecture.md 2.4.8f).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from backend import labels as L
from backend.engine.inspect import inspect_container, volume_sizes
from backend.engine.logs import last_lines
from backend.pomegranate.addon_exec import (
    DATA_DIR,
    ExecFailed,
    backup_chunks,
    exec_command,
    restore_data,
)
from backend.pomegranate.container_config import LOG_CONFIG
from backend.pomegranate.docker_runtime import DockerRuntime
from backend.pomegranate.networks import create_network, get_network

KINDS = ("postgres", "redis")
ADDON_NAME_RE = re.compile(r"^(postgresql|redis)-[a-z]{2,20}-[0-9]{1,6}$")
PASSWORD_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
RESTART_POLICY = {"Name": "unless-stopped"}
PIDS_LIMIT = 256
READY_TIMEOUT = 90.0
SECOND = 1_000_000_000  # Docker healthcheck durations are in nanoseconds
CHUNK = 256 * 1024


class AddonError(Exception):
    """An add-on operation failed; the message is for the user."""


def check_name(name: str) -> str:
    if not ADDON_NAME_RE.fullmatch(name or ""):
        raise ValueError(f"invalid add-on name: {name!r}")
    return name


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown add-on kind: {kind!r}")
    return kind


@dataclass(slots=True)
class AddonSpec:
    name: str
    kind: str
    image: str
    password: str
    memory_mb: int
    projects: list[str] = field(default_factory=list)
    alias: str = ""


@dataclass(slots=True)
class AddonState:
    state: str  # the engine's state; "missing" without a container
    running: bool = False
    health: str = ""
    projects: list[str] = field(default_factory=list)
    started_at: str = ""
    restart_count: int = 0


def _ready_command(kind: str) -> list[str]:
    if kind == "postgres":
        return ["pg_isready", "-q", "-d", "postgres"]
    return ["sh", "-c", "redis-cli ping | grep -q PONG"]


def _config_digest(spec: AddonSpec) -> str:
    # The password is 32 random bytes: its digest reveals nothing, and a rotation shows here.
    text = "\0".join((spec.kind, spec.image, spec.password, str(spec.memory_mb)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class DockerAddons:
    """Add-on servers on the DockerRuntime's engine (the only other Docker user in Pomegranate)."""

    def __init__(self, runtime: DockerRuntime) -> None:
        self.runtime = runtime
        self.instance = runtime.settings.instance
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def docker(self) -> aiodocker.Docker:
        return self.runtime.docker

    def object_name(self, name: str) -> str:
        return L.addon_object_name(name, instance=self.instance)

    def _labels(self, name: str, kind: str) -> dict[str, str]:
        return {L.ADDON: name, L.ADDON_KIND: kind, L.INSTANCE: self.instance}

    def lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # ------------------------------------------------------------------------------ objects

    async def _container(self, name: str) -> dict[str, Any] | None:
        """The add-on's container as inspected, None when missing; refuses one not ours."""
        object_name = self.object_name(name)
        data = await inspect_container(self.docker, object_name)
        if data is None:
            return None
        labels = (data.get("Config") or {}).get("Labels") or {}
        if (data.get("Name") or "").lstrip("/") != object_name:
            return None  # the engine matched an id prefix: not this add-on's container
        if labels.get(L.ADDON) != name or labels.get(L.INSTANCE) != self.instance:
            raise AddonError(f"container {object_name} exists but is not add-on {name}'s")
        return data

    async def _ensure_volume(self, name: str, kind: str) -> str:
        volume = self.object_name(name)
        try:
            data = await self.docker.volumes.get(volume)
            info = await data.show()
            if (info.get("Labels") or {}).get(L.ADDON) != name:
                raise AddonError(f"volume {volume} exists but is not add-on {name}'s")
        except DockerError as exc:
            if exc.status != 404:
                raise
            await self.docker.volumes.create({"Name": volume, "Labels": self._labels(name, kind)})
        return volume

    async def _ensure_own_network(self, name: str, kind: str) -> str:
        network = self.object_name(name)
        if await get_network(self.docker, network) is None:
            await create_network(
                self.docker, self.runtime.settings, network, self._labels(name, kind), internal=True
            )
        found = await get_network(self.docker, network)
        if found is None or (found.get("Labels") or {}).get(L.ADDON) != name:
            raise AddonError(f"network {network} exists but is not add-on {name}'s")
        return network

    def _config(self, spec: AddonSpec, volume: str, network: str) -> dict[str, Any]:
        memory = spec.memory_mb * 1024 * 1024
        env = [f"PAASTECH_ADDON_PASSWORD={spec.password}"]
        if spec.kind == "redis":
            # redis-cli in the container (health check, backups) authenticates with this.
            env += [f"REDISCLI_AUTH={spec.password}", f"PAASTECH_ADDON_MAXMEMORY={memory * 3 // 4}"]
        labels = self._labels(spec.name, spec.kind)
        labels[L.ADDON_CONFIG] = _config_digest(spec)
        labels["traefik.enable"] = "false"
        return {
            "Image": spec.image,
            "Env": env,
            "Labels": labels,
            "Healthcheck": {
                "Test": ["CMD", *_ready_command(spec.kind)],
                "Interval": 5 * SECOND,
                "Timeout": 5 * SECOND,
                "Retries": 3,
                "StartPeriod": 60 * SECOND,
            },
            "HostConfig": {
                "NetworkMode": network,
                "Memory": memory,
                "MemorySwap": memory,
                "PidsLimit": PIDS_LIMIT,
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges=true"],
                "Privileged": False,
                "Mounts": [{"Type": "volume", "Source": volume, "Target": DATA_DIR}],
                "LogConfig": LOG_CONFIG,
                "RestartPolicy": RESTART_POLICY,
                "Init": True,
                # PostgreSQL's shared memory lives in /dev/shm (Docker's default is 64 MB).
                "ShmSize": 128 * 1024 * 1024,
            },
            "NetworkingConfig": {"EndpointsConfig": {network: {}}},
        }

    # ------------------------------------------------------------------------------ ensure

    async def ensure(self, spec: AddonSpec) -> AddonState:
        """Make the add-on's server run as ``spec`` says, on exactly its projects' networks."""
        check_name(spec.name)
        check_kind(spec.kind)
        if not PASSWORD_RE.fullmatch(spec.password):
            raise ValueError("the add-on password must be 16-128 of [A-Za-z0-9_-]")
        async with self.lock(spec.name):
            await self.runtime.ensure_image(spec.image)
            volume = await self._ensure_volume(spec.name, spec.kind)
            own = await self._ensure_own_network(spec.name, spec.kind)
            data = await self._container(spec.name)
            labels = ((data or {}).get("Config") or {}).get("Labels") or {}
            if data is not None and labels.get(L.ADDON_CONFIG) != _config_digest(spec):
                # Password rotated, memory changed or a new image: a new container, same volume.
                await self.docker.containers.container(data["Id"]).delete(force=True)
                data = None
            if data is None:
                config = self._config(spec, volume, own)
                created = await self.docker.containers.create(
                    config, name=self.object_name(spec.name)
                )
                data = await self._inspect(created.id)
            container = self.docker.containers.container(data["Id"])
            await self._attach_networks(data["Id"], spec)
            state = await self._inspect(data["Id"])
            if not (state.get("State") or {}).get("Running"):
                await container.start()
            await self._wait_ready(data["Id"], spec.kind)
            return await self.status(spec.name)

    async def _inspect(self, container_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.docker.containers.container(container_id).show()
        return data

    async def _attach_networks(self, container_id: str, spec: AddonSpec) -> None:
        wanted = {
            await self.runtime.ensure_project_network(project): project for project in spec.projects
        }
        data = await self._inspect(container_id)
        current = set(((data.get("NetworkSettings") or {}).get("Networks") or {}).keys())
        for network in sorted(set(wanted) - current):
            await (await self.docker.networks.get(network)).connect(
                {"Container": container_id, "EndpointConfig": {"Aliases": [spec.alias]}}
            )
        own = self.object_name(spec.name)
        for network in sorted(current - set(wanted) - {own}):
            with contextlib.suppress(DockerError):
                await (await self.docker.networks.get(network)).disconnect(
                    {"Container": container_id, "Force": True}
                )

    async def _wait_ready(self, container_id: str, kind: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while True:
            data = await self._inspect(container_id)
            state = data.get("State") or {}
            if state.get("Running") and not state.get("Restarting"):
                code, _out, _err = await self.exec(container_id, _ready_command(kind))
                if code == 0:
                    return
            if loop.time() >= deadline:
                lines = await last_lines(self.docker, container_id)
                raise AddonError(
                    f"the {kind} server did not become ready in {READY_TIMEOUT:g}s: "
                    + " | ".join(lines[-5:])
                )
            await asyncio.sleep(0.3)

    # ------------------------------------------------------------------------------ status

    async def status(self, name: str) -> AddonState:
        check_name(name)
        data = await self._container(name)
        if data is None:
            return AddonState(state="missing")
        state = data.get("State") or {}
        prefix = self.instance + L.NAME_SEPARATOR
        own = self.object_name(name)
        networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
        projects = sorted(n[len(prefix) :] for n in networks if n.startswith(prefix) and n != own)
        return AddonState(
            state=str(state.get("Status") or "unknown"),
            running=bool(state.get("Running")) and not state.get("Restarting"),
            health=str((state.get("Health") or {}).get("Status") or ""),
            projects=projects,
            started_at=str(state.get("StartedAt") or ""),
            restart_count=int(data.get("RestartCount") or 0),
        )

    # ------------------------------------------------------------------------------ logs

    async def logs(self, name: str, *, tail: int, follow: bool) -> AsyncGenerator[str]:
        """The server's output lines: the last ``tail``, then (``follow``) live ones until the
        container stops. A missing container has no lines."""
        check_name(name)
        data = await self._container(name)
        if data is None:
            return
        try:
            async with contextlib.aclosing(
                self.runtime.logs(data["Id"], follow=follow, tail=tail)
            ) as lines:
                async for line in lines:
                    yield line
        except DockerError as exc:
            if exc.status != 404:  # removed meanwhile: the output simply ends
                raise AddonError(f"logs of add-on {name}: {exc.message}") from exc

    async def volume_sizes(self, names: list[str]) -> dict[str, int]:
        """Bytes in use by each add-on's data volume (-1: not reported), from the engine's disk
        usage report, which walks every volume: one report for all the names."""
        for name in names:
            check_name(name)
        if not names:
            return {}
        measured = await volume_sizes(self.docker)
        return {name: measured.get(self.object_name(name), -1) for name in names}

    # ------------------------------------------------------------------------------ remove

    async def remove(self, name: str) -> None:
        """Remove the container, the volume and the own network; what is missing is fine."""
        check_name(name)
        async with self.lock(name):
            data = await self._container(name)
            if data is not None:
                await self.docker.containers.container(data["Id"]).delete(force=True)
            object_name = self.object_name(name)
            try:
                volume = await self.docker.volumes.get(object_name)
                if ((await volume.show()).get("Labels") or {}).get(L.ADDON) == name:
                    await volume.delete()
            except DockerError as exc:
                if exc.status != 404:
                    raise
            network = await get_network(self.docker, object_name)
            if network is not None and (network.get("Labels") or {}).get(L.ADDON) == name:
                with contextlib.suppress(DockerError):
                    await (await self.docker.networks.get(object_name)).delete()

    # ------------------------------------------------------------------------------ exec

    async def exec(
        self, container_id: str, command: list[str], *, limit: int = 64 * 1024
    ) -> tuple[int, bytes, bytes]:
        """Run ``command`` in the add-on's container (as its non-root user); exit code, and
        at most ``limit`` bytes of stdout and of stderr."""
        return await exec_command(self.docker, container_id, command, limit=limit)

    async def _running_container(self, name: str) -> str:
        data = await self._container(name)
        if data is None or not (data.get("State") or {}).get("Running"):
            raise AddonError(f"add-on {name} is not running")
        return str(data["Id"])

    # ------------------------------------------------------------------------------ backups

    async def backup(self, name: str, kind: str) -> AsyncIterator[bytes]:
        """The add-on's data as a backup file, in chunks (formats: addon_exec.py)."""
        check_name(name)
        check_kind(kind)
        container_id = await self._running_container(name)
        try:
            async for data in backup_chunks(self.docker, container_id, name, kind):
                yield data
        except ExecFailed as exc:
            raise AddonError(str(exc)) from None

    async def restore(self, name: str, kind: str, data: bytes) -> None:
        """Replace the add-on's data with a backup's (formats: addon_exec.py)."""
        check_name(name)
        check_kind(kind)
        async with self.lock(name):
            container_id = await self._running_container(name)
            try:
                await restore_data(self.docker, container_id, name, kind, data)
            except ExecFailed as exc:
                raise AddonError(str(exc)) from None
            if kind == "redis":
                # The server loads it at its next start (the image's entrypoint, restore.rdb).
                await self.docker.containers.container(container_id).restart(t=10)
                await self._wait_ready(container_id, kind)
