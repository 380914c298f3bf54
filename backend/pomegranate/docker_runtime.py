"""The Docker Engine implementation of the Runtime protocol, on aiodocker.

Builds never run on this engine: the isolated builder (builder.py, buildah) builds and pushes
to the platform registry, and containers run the pushed image by digest. Containers run on their
project's own bridge network (no other project's container can reach them by name or address),
with the web port also published on 127.0.0.1 on an ephemeral host port, as a non-root user, and
with the platform's hardening: all capabilities dropped, no-new-privileges, memory (swap
included), CPU and PID limits, json-file log rotation, a restart policy, no binds, no Docker socket,
never privileged. The only storage that outlives a container is the project's own named volumes
(issue 15), labelled as the project's and mounted where its owner asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import zlib
from collections.abc import AsyncGenerator
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError
from aiodocker.stream import Stream
from aiodocker.volumes import DockerVolume

from backend import labels as L
from backend.engine.engine import half_close
from backend.engine.events import EngineEvent, container_events
from backend.engine.health import delays, probe
from backend.engine.inspect import (
    inspect_container,
    inspect_containers,
    inspect_volume,
    listed_name,
    parse_time,
    volume_sizes,
)
from backend.engine.logs import LineSplitter
from backend.pomegranate.build_context import GENERATED_DOCKERFILE, read_root_files
from backend.pomegranate.builder import IsolatedBuilder, forbidden_labels
from backend.pomegranate.buildpacks import BuildPlan, plan_build
from backend.pomegranate.container_config import (
    LOG_CONFIG,
    RESTART_POLICY,
    app_config,
    oneoff_config,
    run_as_user,
    volume_init_config,
)
from backend.pomegranate.registry import Registry
from backend.pomegranate.runtime import (
    BuiltImage,
    ContainerInfo,
    HealthCheckError,
    LogCallback,
    Mount,
    NotOwned,
    OneOff,
    ProcessSpec,
    RuntimeEvent,
    SourceTar,
    VolumeInfo,
    VolumeInUse,
)
from backend.settings import Settings, get_settings

log = logging.getLogger(__name__)

# How long a container without a published port (a worker) must stay up to count as started.
WORKER_SETTLE_SECONDS = 2.0
EVENT_ACTIONS = [
    "create",
    "start",
    "restart",
    "die",
    "oom",
    "kill",
    "stop",
    "destroy",
    "health_status",
]


def image_repository(project: str) -> str:
    return f"paastech/app-{project}"


def image_tag(project: str, application: int) -> str:
    return f"{image_repository(project)}:{application}"


container_name = L.container_name
network_name = L.network_name


class NetworkError(Exception):
    """A project network could not be created or is not ours."""


class VolumeError(Exception):
    """A project volume could not be prepared, or a same-named volume is not the project's."""


# Kept for swarm_runtime.py, which imports them from here.
_LineSplitter = LineSplitter
_parse_time = parse_time


class DockerRuntime:
    """Runtime on a Docker Engine. One instance per process; call ``close()`` when done."""

    def __init__(self, settings: Settings | None = None, docker: aiodocker.Docker | None = None):
        self.settings = settings or get_settings()
        self._docker = docker
        # Creating a project's network: one at a time per project in this process.
        self._network_locks: dict[str, asyncio.Lock] = {}
        self.builder = IsolatedBuilder(self.settings)
        self.registry = Registry(self.settings)
        # Pulls started as a build finishes (issue 10): the engine fetches the new image while the
        # API records the build, so the release's ensure_image usually finds it there.
        self._pulls: dict[str, asyncio.Task[Any]] = {}
        # Volumes given to a user by this process: (volume, uid:gid). One preparation at a time
        # per volume (the replicas of a release start together).
        self._volume_owners: set[tuple[str, str]] = set()
        self._volume_locks: dict[str, asyncio.Lock] = {}

    @property
    def docker(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self.settings.docker_url or None)
        return self._docker

    async def close(self) -> None:
        for task in list(self._pulls.values()):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self._docker is not None:
            await self._docker.close()
            self._docker = None

    # ---------------------------------------------------------------------------------- build

    async def build(
        self, project: str, application: int, source: SourceTar, on_log: LogCallback
    ) -> BuiltImage:
        """Build ``source`` (a tar archive: bytes, or the path of a tar file) into
        ``paastech/app-<project>:<application>``.

        Every output line goes to ``on_log`` as it comes. Raises BuildError naming the failing
        step with the last 20 lines, on an unrecognised tree, or after build_timeout_seconds.
        """
        files = await asyncio.to_thread(read_root_files, source)
        plan = plan_build(files, self.settings)
        generated: tuple[str, str] | None = None
        if plan.dockerfile is not None:
            generated = (GENERATED_DOCKERFILE, plan.dockerfile)
            await on_log(f"-----> {plan.stack.capitalize()} app detected")
        if plan.stack == "dockerfile":
            await on_log("-----> Building with the repository's Dockerfile")
        output = await self.builder.build(project, application, source, plan, generated, on_log)
        self._prefetch(output.image)
        return BuiltImage(image=output.image, plan=plan, image_id=output.digest)

    async def remove_build_cache(self, project: str) -> None:
        """Drop the project's build storage (its layer cache), e.g. when it is deleted."""
        await self.builder.remove_project(project)

    # ---------------------------------------------------------------------------------- run

    def _network_labels(self, project: str) -> dict[str, str]:
        return L.ownership_labels(project, instance=self.settings.instance)

    async def ensure_project_network(self, project: str) -> str:
        """The project's bridge network, created with a subnet of its own from the pool when it
        does not exist. Refuses a same-named network that is not this project's (NetworkError)."""
        name = network_name(project, instance=self.settings.instance)
        lock = self._network_locks.setdefault(name, asyncio.Lock())
        async with lock:
            existing = await self._get_network(name)
            if existing is None:
                await self._create_network(name, self._network_labels(project))
                existing = await self._get_network(name)
            labels = (existing or {}).get("Labels") or {}
            if existing is None or any(
                labels.get(k) != v for k, v in self._network_labels(project).items()
            ):
                raise NetworkError(f"network {name} exists but is not project {project}'s")
        return name

    async def _get_network(self, name: str) -> dict[str, Any] | None:
        try:
            network = await self.docker.networks.get(name)
            data: dict[str, Any] = await network.show()
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise
        # The engine also matches ID prefixes: only an exact name is this network.
        return data if data.get("Name") == name else None

    async def _used_subnets(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        used = []
        for network in await self.docker.networks.list():
            for config in (network.get("IPAM") or {}).get("Config") or []:
                with contextlib.suppress(ValueError, KeyError):
                    used.append(ipaddress.ip_network(config["Subnet"], strict=False))
        return used

    async def _create_network(
        self, name: str, labels: dict[str, str], *, internal: bool = False
    ) -> None:
        """Create ``name`` on the first free subnet of the pool, starting at a point derived from
        the name so that installations sharing the engine rarely try the same one; the engine
        refuses an overlapping subnet (another installation won the race) and we move on."""
        s = self.settings
        pool = ipaddress.ip_network(s.project_network_pool, strict=False)
        if pool.version != 4 or s.project_network_prefix < pool.prefixlen:
            raise NetworkError(
                f"project_network_pool {pool} must be IPv4 and hold /{s.project_network_prefix}s"
            )
        count = 2 ** (s.project_network_prefix - pool.prefixlen)
        used = await self._used_subnets()
        first = zlib.crc32(name.encode()) % count
        for i in range(count):
            index = (first + i) % count
            subnet = ipaddress.ip_network(
                (
                    int(pool.network_address) + index * 2 ** (32 - s.project_network_prefix),
                    s.project_network_prefix,
                )
            )
            if any(subnet.overlaps(u) for u in used):
                continue
            try:
                await self.docker.networks.create(
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
        raise NetworkError(f"no free /{s.project_network_prefix} left in {pool} for {name}")

    async def remove_project_network(self, project: str) -> None:
        """Remove the project's network (its containers must be gone); a missing one is fine."""
        name = network_name(project, instance=self.settings.instance)
        found = await self._get_network(name)
        if found is None:
            return
        # Add-on servers (issue 15) are attached to the networks of their projects: they leave
        # this one, they are not removed with the project.
        for container_id in found.get("Containers") or {}:
            info = await self.inspect(container_id)
            if (
                info is not None
                and info.labels.get(L.ADDON)
                and (info.labels.get(L.INSTANCE) == self.settings.instance)
            ):
                with contextlib.suppress(DockerError):
                    await (await self.docker.networks.get(name)).disconnect(
                        {"Container": container_id, "Force": True}
                    )
        try:
            await (await self.docker.networks.get(name)).delete()
        except DockerError as exc:
            if exc.status in (403, 409):
                # Still has endpoints (a container that could not be removed): keep it, the
                # next removal of the project's containers tries again.
                log.warning("network %s not removed: %s", name, exc.message)
            elif exc.status != 404:
                raise

    def _container_config(
        self, spec: ProcessSpec, network: str, image_user: str = ""
    ) -> dict[str, Any]:
        return app_config(spec, self.settings, network, image_user)

    async def _image_user(self, image: str) -> str:
        try:
            data = await self.docker.images.inspect(image)
        except DockerError as exc:
            if exc.status == 404:
                return ""  # the create below reports the missing image
            raise
        return str((data.get("Config") or {}).get("User") or "")

    async def _create(self, spec: ProcessSpec, *, once: bool = False) -> Any:
        """Create (not start) the container of ``spec``, named
        <instance>.<project>.<app>.<process>.<replica>, on the project's network.

        A leftover container with the same name (a half-started release from a crash) is
        replaced only when it is this project's, of this instance; anything else is refused.
        ``once``: a one-shot command (the release phase), never restarted by the engine.
        """
        await self.ensure_image(spec.image)
        network = await self.ensure_project_network(spec.project)
        image_user = await self._image_user(spec.image)
        await self.prepare_mounts(spec, run_as_user(image_user, self.settings.container_user))
        config = app_config(spec, self.settings, network, image_user, once=once)
        name = container_name(
            spec.project,
            spec.application,
            spec.process_type,
            spec.replica,
            instance=self.settings.instance,
        )
        try:
            return await self.docker.containers.create(config, name=name)
        except DockerError as exc:
            if exc.status != 409:
                raise
            existing = await self.inspect(name)
            if (
                existing is None
                or existing.name != name
                or existing.ownership is None
                or existing.ownership.project != spec.project
                or existing.labels.get(L.INSTANCE) != self.settings.instance
            ):
                raise
            await self.remove(existing.id)
            return await self.docker.containers.create(config, name=name)

    async def start(self, spec: ProcessSpec) -> ContainerInfo:
        """Create and start one container (see _create for its name and network)."""
        container = await self._create(spec)
        try:
            await container.start()
        except DockerError:
            await self.remove(container.id)
            raise
        info = await self.inspect(container.id)
        if info is None:
            raise HealthCheckError(f"container {container.id[:12]} vanished right after it started")
        return info

    async def run_once(
        self,
        spec: ProcessSpec,
        on_log: LogCallback,
        timeout: float,  # noqa: ASYNC109 - the command's time limit, part of the API
    ) -> int:
        """Run one container to completion (the release phase), output streamed, then removed."""
        container = await self._create(spec, once=True)
        try:
            async with asyncio.timeout(timeout):
                await container.start()
                async for line in self.logs(container.id, follow=True):
                    await on_log(line)
                result = await container.wait()
            return int(result.get("StatusCode", -1))
        finally:
            await asyncio.shield(self.remove(container.id))

    async def start_oneoff(
        self,
        spec: ProcessSpec,
        command: list[str],
        *,
        tty: bool,
        attach: bool,
        size: tuple[int, int] | None = None,
    ) -> OneOff:
        """A one-off command (issue 14): the app's container config (user, caps, limits, network,
        env) with the one-off label, ``command`` as the argv, no restart, stdin open when
        attached. Named <instance>.<project>.<app>.run.<random>; a name taken is never replaced."""
        await self.ensure_image(spec.image)
        network = await self.ensure_project_network(spec.project)
        image_user = await self._image_user(spec.image)
        await self.prepare_mounts(spec, run_as_user(image_user, self.settings.container_user))
        for _ in range(5):
            spec.replica = L.ONEOFF_FIRST_REPLICA + secrets.randbelow(900_000)
            config = oneoff_config(
                spec, self.settings, network, image_user, command, tty=tty, attach=attach
            )
            name = container_name(
                spec.project,
                spec.application,
                spec.process_type,
                spec.replica,
                instance=self.settings.instance,
            )
            try:
                container = await self.docker.containers.create(config, name=name)
            except DockerError as exc:
                if exc.status == 409:
                    continue  # that random number is in use: draw another
                raise
            break
        else:
            raise RuntimeError("no free one-off container name")
        handle = DockerOneOff(self, container, name)
        try:
            if attach:
                # Attached before the start, so no early output is lost. aiodocker opens the
                # hijacked connection lazily (first read or write): open it now.
                await handle.attach()
            await container.start()
            if tty and size is not None:
                await handle.resize(*size)
        except BaseException:
            await asyncio.shield(handle.remove())
            raise
        return handle

    # ---------------------------------------------------------------------------------- volumes

    async def prepare_mounts(self, spec: ProcessSpec, user: str) -> None:
        for mount in spec.mounts:
            await self.ensure_volume(spec.project, mount, user)

    async def ensure_volume(self, project: str, mount: Mount, user: str) -> None:
        """The project volume of ``mount``, created on first use with the project's labels and
        given to ``user`` (the container's uid:gid): the app runs as a non-root user, and a new
        volume's root belongs to root. A same-named volume that is not the project's is refused."""
        name = mount.docker_name
        lock = self._volume_locks.setdefault(name, asyncio.Lock())
        async with lock:
            labels = L.volume_labels(project, mount.volume, instance=self.settings.instance)
            data = await self._volume(name)
            if data is None:
                await self.docker.volumes.create(
                    {"Name": name, "Driver": "local", "Labels": labels}
                )
                data = await self._volume(name)
            found = (data or {}).get("Labels") or {}
            if data is None or any(found.get(k) != v for k, v in labels.items()):
                raise VolumeError(f"volume {name} exists but is not project {project}'s")
            if (name, user) not in self._volume_owners:
                await self._give_volume(name, user)
                self._volume_owners.add((name, user))

    async def _volume(self, name: str) -> dict[str, Any] | None:
        return await inspect_volume(self.docker, name)

    async def _give_volume(self, name: str, user: str) -> None:
        """chown the volume's root to ``user`` in a short-lived container (volume_init_config)."""
        try:
            config = volume_init_config(name, user, self.settings)
        except ValueError as exc:
            raise VolumeError(str(exc)) from None
        container = await self.docker.containers.create(config)
        try:
            await container.start()
            result = await asyncio.wait_for(container.wait(), timeout=60)
            code = int(result.get("StatusCode", -1))
            if code != 0:
                lines = await self._last_lines(container.id, 5)
                raise VolumeError(
                    f"could not prepare volume {name} (exit {code}): {' '.join(lines)}"
                )
        finally:
            await asyncio.shield(self.remove(container.id))

    async def list_volumes(
        self, projects: list[str] | None = None, *, sizes: bool = False
    ) -> list[VolumeInfo]:
        """The project volumes of this instance (of ``projects`` when given), with their sizes as
        the engine's disk usage reports them (-1 when it does not say)."""
        filters = [*L.instance_filters(self.settings.instance), L.VOLUME]
        listed = await self.docker.volumes.list(filters={"label": filters})
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
            measured = await volume_sizes(self.docker)
            for info in found:
                info.size_bytes = measured.get(info.docker_name, -1)
        return sorted(found, key=lambda v: (v.project, v.volume, v.docker_name))

    async def remove_volume(self, project: str, docker_name: str) -> None:
        data = await self._volume(docker_name)
        if data is None:
            return
        labels = data.get("Labels") or {}
        expected = L.ownership_labels(project, instance=self.settings.instance)
        if L.VOLUME not in labels or any(labels.get(k) != v for k, v in expected.items()):
            raise NotOwned(f"volume {docker_name} is not one of {project}'s")
        users = await self.docker.containers.list(all=True, filters={"volume": [docker_name]})
        if users:
            names = ", ".join(sorted(listed_name(c) for c in users))
            raise VolumeInUse(f"volume {docker_name} is in use by {names}")
        try:
            await DockerVolume(self.docker, docker_name).delete()
        except DockerError as exc:
            if exc.status == 409:
                raise VolumeInUse(f"volume {docker_name} is in use: {exc.message}") from None
            if exc.status != 404:
                raise
        self._volume_owners = {o for o in self._volume_owners if o[0] != docker_name}

    # ---------------------------------------------------------------------------------- inspect

    @staticmethod
    def _info(data: dict[str, Any]) -> ContainerInfo:
        state = data.get("State") or {}
        labels = (data.get("Config") or {}).get("Labels") or {}
        host_port = None
        ports = (data.get("NetworkSettings") or {}).get("Ports") or {}
        for bindings in ports.values():
            for binding in bindings or []:
                if binding.get("HostPort"):
                    host_port = int(binding["HostPort"])
                    break
            if host_port:
                break
        status = state.get("Status", "unknown")
        return ContainerInfo(
            id=data["Id"],
            name=(data.get("Name") or "").lstrip("/"),
            ownership=L.parse_labels(labels),
            state=status,
            running=bool(state.get("Running")) and not state.get("Restarting"),
            host_port=host_port,
            exit_code=state.get("ExitCode") if status in ("exited", "dead", "restarting") else None,
            oom_killed=bool(state.get("OOMKilled")),
            started_at=parse_time(state.get("StartedAt")),
            image=(data.get("Config") or {}).get("Image", ""),
            restart_count=int(data.get("RestartCount") or 0),
            labels=dict(labels),
            networks=sorted((data.get("NetworkSettings") or {}).get("Networks") or {}),
        )

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        """The container's current state; None when it does not exist."""
        data = await inspect_container(self.docker, container_id)
        return None if data is None else self._info(data)

    async def list_containers(self, project: str | None = None) -> list[ContainerInfo]:
        """Containers labelled paastech.managed=true (all states), optionally of one project."""
        label_filters = L.instance_filters(self.settings.instance)
        if project is not None:
            label_filters.append(f"{L.PROJECT}={project}")
        found = await inspect_containers(self.docker, label_filters)
        return sorted((self._info(data) for data in found), key=lambda i: i.name)

    # ---------------------------------------------------------------------------------- health

    async def _last_lines(self, container_id: str, count: int = 20) -> list[str]:
        lines: list[str] = []
        with contextlib.suppress(DockerError):
            async for line in self.logs(container_id, follow=False, tail=count):
                lines.append(line)
        return lines[-count:]

    async def wait_healthy(
        self,
        container: ContainerInfo,
        path: str | None,
        timeout: float,  # noqa: ASYNC109 - a deadline for the whole wait, part of the API
    ) -> None:
        """Wait until the container answers on its published port.

        The probe and its rule are backend/engine/health.py's (HTTP GET of ``path``, else a TCP
        exchange that proves the app itself listens). A container
        without a published port (a worker) is healthy once it has stayed up for a short while.
        Fails fast when the container exits or restarts; HealthCheckError carries its last lines.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        reason = "not checked"
        settle_until = loop.time() + min(WORKER_SETTLE_SECONDS, timeout / 2)
        schedule = delays()  # fast at first, then one probe a second (issue 17)
        while True:
            info = await self.inspect(container.id)
            if info is None:
                raise HealthCheckError(f"container {container.name} was removed")
            if not info.running or info.restart_count > container.restart_count:
                await asyncio.sleep(0.2)  # let the last output reach the log
                lines = await self._last_lines(container.id)
                code = (await self.inspect(container.id) or info).exit_code
                if info.oom_killed:
                    what = "was killed: out of memory"
                elif info.running:  # it exited and the restart policy already started it again
                    what = f"exited and is restarting (restart #{info.restart_count})"
                elif code is not None:
                    what = f"exited with code {code}"
                else:
                    what = f"is {info.state}"
                raise HealthCheckError(f"container {info.name} {what}", lines)
            if info.host_port is None:
                if loop.time() >= settle_until:
                    return
            else:
                problem = await probe(info.host_port, path)
                if problem is None:
                    return
                reason = problem
            if loop.time() >= deadline:
                lines = await self._last_lines(container.id)
                raise HealthCheckError(
                    f"container {info.name} not healthy after {timeout:g}s: {reason}", lines
                )
            await asyncio.sleep(min(next(schedule), max(0.0, deadline - loop.time())))

    # ---------------------------------------------------------------------------------- stop

    async def stop(self, container_id: str, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Stop gracefully (SIGTERM, SIGKILL after ``timeout`` s). A missing container is fine."""
        try:
            await self.docker.containers.container(container_id).stop(t=int(timeout))
        except DockerError as exc:
            if exc.status not in (304, 404):
                raise

    async def restart(
        self,
        container_id: str,
        project: str,
        timeout: float = 10,  # noqa: ASYNC109 - the SIGTERM grace, part of the API
    ) -> ContainerInfo:
        """Restart in place (issue 19), after checking by its labels that the container is
        ``project``'s and this instance's: ids and names come from callers, labels from us."""
        info = await self.inspect(container_id)
        if (
            info is None
            or info.ownership is None
            or info.ownership.project != project
            or info.labels.get(L.INSTANCE) != self.settings.instance
        ):
            raise NotOwned(f"container {container_id[:12]} is not one of {project}'s")
        await self.docker.containers.container(info.id).restart(t=int(timeout))
        restarted = await self.inspect(info.id)
        if restarted is None:
            raise HealthCheckError(f"container {info.name} vanished while it restarted")
        return restarted

    async def remove(self, container_id: str) -> None:
        """Remove (killing it if needed). A missing container is fine."""
        try:
            await self.docker.containers.container(container_id).delete(force=True, v=True)
        except DockerError as exc:
            if exc.status == 409 and "already in progress" in exc.message:
                return
            if exc.status != 404:
                raise

    # ---------------------------------------------------------------------------------- logs

    async def logs(
        self, container_id: str, *, follow: bool, tail: int | None = None
    ) -> AsyncGenerator[str]:
        """stdout and stderr lines of a container, oldest first; ``follow`` keeps streaming until
        the container stops (or the consumer stops iterating)."""
        container = self.docker.containers.container(container_id)
        params: dict[str, Any] = {"tail": "all" if tail is None else str(tail)}
        splitter = LineSplitter()
        if follow:
            stream = container.log(stdout=True, stderr=True, follow=True, **params)
            try:
                async for chunk in stream:
                    for line in splitter.feed(chunk):
                        yield line
            finally:
                # aiodocker annotates the stream as an AsyncIterator; it is an async generator.
                await stream.aclose()  # type: ignore[attr-defined]
        else:
            chunks = await container.log(stdout=True, stderr=True, follow=False, **params)
            for chunk in chunks:
                for line in splitter.feed(chunk):
                    yield line
        for line in splitter.flush():
            yield line

    # ---------------------------------------------------------------------------------- events

    async def events(self) -> AsyncGenerator[RuntimeEvent]:
        """Container events of our containers, as they happen, until the consumer stops.

        Each call opens its own event stream from the engine (filtered to this instance's
        managed containers), so several consumers do not share or stop each other's streams.
        """
        label_filters = L.instance_filters(self.settings.instance)
        async with container_events(self.docker, label_filters, EVENT_ACTIONS) as stream:
            async for event in stream:
                yield self._event(event)

    @staticmethod
    def _event(event: EngineEvent) -> RuntimeEvent:
        return RuntimeEvent(
            kind=event.kind,
            container_id=event.container_id,
            ownership=L.parse_labels(event.attributes),
            oneoff=L.is_oneoff(event.attributes),
            exit_code=event.exit_code,
            detail=event.detail,
            time=event.time,
        )

    # ---------------------------------------------------------------------------------- images

    def _registry_ref(self, image: str) -> bool:
        return image.startswith(f"{self.settings.registry_address}/")

    def _prefetch(self, image: str) -> None:
        """Start pulling a just-built registry image in the background (one pull per image)."""
        if not self._registry_ref(image) or image in self._pulls:
            return
        task = asyncio.create_task(self._pull_missing(image))
        self._pulls[image] = task

        def done(finished: asyncio.Task[Any]) -> None:
            if self._pulls.get(image) is finished:
                del self._pulls[image]
            if not finished.cancelled() and finished.exception() is not None:
                # Not fatal: ensure_image pulls again and reports the error where it matters.
                log.info("background pull of %s failed: %s", image, finished.exception())

        task.add_done_callback(done)

    async def _pull_missing(self, image: str) -> dict[str, Any]:
        """The engine's inspect of ``image``, pulling it from the platform registry if missing."""
        try:
            return await self.docker.images.inspect(image)
        except DockerError as exc:
            if exc.status != 404 or not self._registry_ref(image):
                raise
        s = self.settings
        await self.docker.images.pull(
            image,
            auth={
                "username": s.registry_username,
                "password": s.resolved_registry_password(),
                "serveraddress": s.registry_address,
            },
        )
        return await self.docker.images.inspect(image)

    async def ensure_image(self, image: str) -> None:
        """Pull a platform-registry image the engine does not have, then refuse it when its
        config carries a label the platform forbids (defence in depth: the builder strips them,
        but a container must never get routing or ownership labels from an image)."""
        pending = self._pulls.get(image)
        if pending is not None:
            # Its failure is not this call's: the pull below retries and reports it.
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        data = await self._pull_missing(image)
        bad = forbidden_labels((data.get("Config") or {}).get("Labels"))
        if bad:
            raise ForbiddenImage(
                f"image {image} carries labels the platform forbids ({', '.join(bad)}); "
                "only org.opencontainers.* labels are allowed"
            )

    async def list_images(self, project: str) -> list[str]:
        """The project's images in the platform registry (``<repo>@sha256:...``), newest
        Application first."""
        repo = f"{self.settings.registry_address}/{self.registry.repository(project)}"
        tags = await self.registry.tags(project)
        ordered = sorted(
            ((int(tag), digest) for tag, digest in tags.items() if tag.isdigit()), reverse=True
        )
        refs: list[str] = []
        for _, digest in ordered:
            ref = f"{repo}@{digest}"
            if ref not in refs:
                refs.append(ref)
        return refs

    async def image_bytes(self, image: str) -> int:
        """Size of an image in bytes (the image_mb_per_project quota); 0 when it is missing.
        A platform-registry image is measured in the registry (the engine has not pulled it)."""
        if self._registry_ref(image):
            repository, _, digest = image.partition("@")
            project = repository.rsplit("/app-", 1)[-1]
            return await self.registry.image_bytes(project, digest)
        try:
            data = await self.docker.images.inspect(image)
        except DockerError as exc:
            if exc.status == 404:
                return 0
            raise
        return int(data.get("Size") or 0)

    async def remove_image(self, tag: str, *, force: bool = False) -> None:
        """Remove an image from the engine and, for a platform-registry image, its manifest from
        the registry. A missing one is fine. In use by a container: DockerError 409 unless
        ``force`` (and then the registry keeps it too)."""
        try:
            await self.docker.images.delete(tag, force=force)
        except DockerError as exc:
            if exc.status != 404:
                raise
        if self._registry_ref(tag) and "@" in tag:
            repo, _, digest = tag.partition("@")
            project = repo.rpartition("/app-")[2]
            await self.registry.delete(project, digest)


class DockerOneOff:
    """A one-off command's container on Docker (the OneOff protocol of runtime.py)."""

    def __init__(self, runtime: DockerRuntime, container: Any, name: str) -> None:
        self.runtime = runtime
        self.container = container
        self.id: str = container.id
        self.name = name
        self.stream: Stream | None = None  # aiodocker's attach Stream, when attached
        self._attached = contextlib.AsyncExitStack()
        self._removed = False

    async def attach(self) -> None:
        """Open the attach connection now (entering the Stream opens it; leaving closes it)."""
        stream = self.container.attach(stdin=True, stdout=True, stderr=True)
        self.stream = await self._attached.enter_async_context(stream)

    async def read(self) -> tuple[int, bytes] | None:
        if self.stream is None:
            return None
        message = await self.stream.read_out()
        return None if message is None else (message.stream, message.data)

    async def write(self, data: bytes) -> None:
        if self.stream is not None:
            await self.stream.write_in(data)

    async def close_stdin(self) -> None:
        """Half-close the attach connection: the engine closes the command's stdin (StdinOnce)
        and keeps streaming its output."""
        half_close(self.stream)

    async def resize(self, rows: int, cols: int) -> None:
        if rows > 0 and cols > 0:
            with contextlib.suppress(DockerError):
                await self.container.resize(h=rows, w=cols)

    async def wait(self) -> int:
        result = await self.container.wait()
        return int(result.get("StatusCode", -1))

    async def kill(self) -> None:
        with contextlib.suppress(DockerError):
            await self.container.kill()

    async def remove(self) -> None:
        with contextlib.suppress(Exception):
            await self._attached.aclose()
        if not self._removed:
            await self.runtime.remove(self.id)
            self._removed = True


class ForbiddenImage(Exception):
    """An image whose config carries labels the platform does not allow."""


__all__ = [
    "GENERATED_DOCKERFILE",
    "LOG_CONFIG",
    "RESTART_POLICY",
    "BuildPlan",
    "DockerRuntime",
    "ForbiddenImage",
    "container_name",
    "image_repository",
    "image_tag",
    "network_name",
    "run_as_user",
]
