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
import logging
import secrets
from collections.abc import AsyncGenerator
from typing import Any, cast

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError
from aiodocker.stream import Stream

from backend import labels as L
from backend.engine.engine import half_close, update_container
from backend.engine.events import EngineEvent, container_events
from backend.engine.health import delays, probe
from backend.engine.inspect import (
    inspect_container,
    inspect_containers,
    list_containers,
    listed_name,
    parse_time,
)
from backend.engine.logs import container_lines, last_lines
from backend.pomegranate.build_context import GENERATED_DOCKERFILE, read_root_files
from backend.pomegranate.builder import IsolatedBuilder
from backend.pomegranate.buildpacks import BuildPlan, plan_build
from backend.pomegranate.container_config import (
    LOG_CONFIG,
    RESTART_POLICY,
    app_config,
    oneoff_config,
    run_as_user,
)
from backend.pomegranate.containers import remove_container
from backend.pomegranate.images import ForbiddenImage, Images, image_user
from backend.pomegranate.networks import NetworkError, ProjectNetworks, network_name
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
)
from backend.pomegranate.volumes import ProjectVolumes, VolumeError
from backend.settings import Settings, get_settings

log = logging.getLogger(__name__)

# A published port the engine picked is held by another process (see DockerRuntime.start).
PORT_IN_USE = "address already in use"
PORT_CLASH_ATTEMPTS = 5

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


container_name = L.container_name


class DockerRuntime:
    """Runtime on a Docker Engine. One instance per process; call ``close()`` when done."""

    def __init__(self, settings: Settings | None = None, docker: aiodocker.Docker | None = None):
        self.settings = settings or get_settings()
        self._docker = docker
        self.builder = IsolatedBuilder(self.settings)
        self.registry = Registry(self.settings)
        # Networks, volumes and images: each in its own module, on this runtime's engine.
        self.networks = ProjectNetworks(self.settings, lambda: self.docker)
        self.volumes = ProjectVolumes(self.settings, lambda: self.docker)
        self.images = Images(self.settings, lambda: self.docker, self.registry)

    @property
    def docker(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self.settings.docker_url or None)
        return self._docker

    async def close(self) -> None:
        await self.images.close()
        await self.builder.close()
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
        self.images.prefetch(output.image)
        return BuiltImage(
            image=output.image, plan=plan, image_id=output.digest, size_bytes=output.size_bytes
        )

    async def remove_build_cache(self, project: str) -> None:
        """Drop the project's build storage (its layer cache), e.g. when it is deleted."""
        await self.builder.remove_project(project)

    # ---------------------------------------------------------------------------------- run

    async def ensure_project_network(self, project: str) -> str:
        """The project's bridge network (networks.py); NetworkError for one not the project's."""
        return await self.networks.ensure(project)

    async def remove_project_network(self, project: str) -> None:
        """Remove the project's network (its containers must be gone); a missing one is fine."""
        await self.networks.remove(project)

    async def _network_and_user(self, spec: ProcessSpec) -> tuple[str, str]:
        """The project's network and the image's user, their engine round trips overlapped
        (each start waits for both: issue 17). Both run to the end before an error is raised."""

        async def image_then_user() -> str:
            await self.ensure_image(spec.image)
            return await image_user(self.docker, spec.image)

        network, user = await asyncio.gather(
            self.ensure_project_network(spec.project), image_then_user(), return_exceptions=True
        )
        for result in (network, user):
            if isinstance(result, BaseException):
                raise result
        return cast(str, network), cast(str, user)

    async def _create(self, spec: ProcessSpec, *, once: bool = False) -> Any:
        """Create (not start) the container of ``spec``, named
        <instance>.<project>.<app>.<process>.<replica>, on the project's network.

        A leftover container with the same name (a half-started release from a crash) is
        replaced only when it is this project's, of this instance; anything else is refused.
        ``once``: a one-shot command (the release phase), never restarted by the engine.
        """
        network, user = await self._network_and_user(spec)
        await self.prepare_mounts(spec, run_as_user(user, self.settings.container_user))
        config = app_config(spec, self.settings, network, user, once=once)
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
        for attempt in range(1, PORT_CLASH_ATTEMPTS + 1):
            container = await self._create(spec)
            try:
                await container.start()
                break
            except DockerError as exc:
                await self.remove(container.id)
                # The engine hands out published host ports from the kernel's ephemeral range
                # and, after a restart, from its start again: a port another process took since
                # fails the start. The engine's allocator has moved on: the next try gets another.
                if PORT_IN_USE not in str(exc.message) or attempt == PORT_CLASH_ATTEMPTS:
                    raise
                log.warning("%s: host port taken, starting again (%s)", spec.project, exc.message)
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
        network, user = await self._network_and_user(spec)
        await self.prepare_mounts(spec, run_as_user(user, self.settings.container_user))
        for _ in range(5):
            spec.replica = L.ONEOFF_FIRST_REPLICA + secrets.randbelow(900_000)
            config = oneoff_config(
                spec, self.settings, network, user, command, tty=tty, attach=attach
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
        await self.volumes.prepare_mounts(spec, user)

    async def ensure_volume(self, project: str, mount: Mount, user: str) -> None:
        """The project volume of ``mount``, ready for ``user`` (volumes.py)."""
        await self.volumes.ensure(project, mount, user)

    async def list_volumes(
        self, projects: list[str] | None = None, *, sizes: bool = False
    ) -> list[VolumeInfo]:
        return await self.volumes.list_volumes(projects, sizes=sizes)

    async def remove_volume(self, project: str, docker_name: str) -> None:
        await self.volumes.remove(project, docker_name)

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

    @staticmethod
    def _listed_info(entry: dict[str, Any]) -> ContainerInfo:
        """What the engine's listing says of a container (see Runtime.list_containers(detail=
        False)): the same values as ``_info`` for every field the listing carries."""
        labels = entry.get("Labels") or {}
        state = str(entry.get("State") or "unknown")
        host_port = next(
            (int(p["PublicPort"]) for p in entry.get("Ports") or [] if p.get("PublicPort")), None
        )
        return ContainerInfo(
            id=entry["Id"],
            name=listed_name(entry),
            ownership=L.parse_labels(labels),
            state=state,
            # The inspect's Running and not Restarting: a paused container is Running too.
            running=state in ("running", "paused"),
            host_port=host_port,
            exit_code=None,
            oom_killed=False,
            started_at=None,
            image=str(entry.get("Image") or ""),
            labels=dict(labels),
            networks=sorted((entry.get("NetworkSettings") or {}).get("Networks") or {}),
        )

    async def list_containers(
        self, project: str | None = None, *, detail: bool = True
    ) -> list[ContainerInfo]:
        """Containers labelled paastech.managed=true (all states), optionally of one project.
        ``detail=False``: the one listing call only, no inspect (Runtime.list_containers)."""
        label_filters = L.instance_filters(self.settings.instance)
        if project is not None:
            label_filters.append(f"{L.PROJECT}={project}")
        if not detail:
            listed = await list_containers(self.docker, label_filters)
            return sorted((self._listed_info(entry) for entry in listed), key=lambda i: i.name)
        found = await inspect_containers(self.docker, label_filters)
        return sorted((self._info(data) for data in found), key=lambda i: i.name)

    # ---------------------------------------------------------------------------------- health

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
        port = container.host_port
        # One client session for the whole wait: a session per probe costs its setup each time.
        async with aiohttp.ClientSession() as session:
            while True:
                if port is not None:
                    # The probe runs beside the inspect (not after it): a healthy answer ends the
                    # wait without the engine's round trip (issue 17, release switch).
                    problem, info = await asyncio.gather(
                        probe(port, path, session=session), self.inspect(container.id)
                    )
                    if problem is None:
                        await self._settle_cpu(container)
                        return
                    reason = problem
                else:
                    info = await self.inspect(container.id)
                if info is None:
                    raise HealthCheckError(f"container {container.name} was removed")
                if not info.running or info.restart_count > container.restart_count:
                    await asyncio.sleep(0.2)  # let the last output reach the log
                    lines = await last_lines(self.docker, container.id)
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
                        await self._settle_cpu(container)
                        return
                elif port != info.host_port:  # first seen now: probed on the next turn
                    port = info.host_port
                    continue
                if loop.time() >= deadline:
                    lines = await last_lines(self.docker, container.id)
                    raise HealthCheckError(
                        f"container {info.name} not healthy after {timeout:g}s: {reason}", lines
                    )
                await asyncio.sleep(min(next(schedule), max(0.0, deadline - loop.time())))

    async def _settle_cpu(self, container: ContainerInfo) -> None:
        """A container started with the startup boost gets its own CPU limit back, now that it
        is healthy. Failing that, the health check fails: it must not serve above its limit."""
        limit = container.labels.get(L.CPU_LIMIT)
        if not limit:
            return
        try:
            await update_container(self.docker, container.id, {"NanoCpus": int(limit)})
        except (DockerError, ValueError) as exc:
            raise HealthCheckError(
                f"container {container.name}: its CPU limit could not be applied: {exc}"
            ) from None

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
        await remove_container(self.docker, container_id)

    # ---------------------------------------------------------------------------------- logs

    async def logs(
        self, container_id: str, *, follow: bool, tail: int | None = None
    ) -> AsyncGenerator[str]:
        """stdout and stderr lines of a container, oldest first; ``follow`` keeps streaming until
        the container stops (or the consumer stops iterating)."""
        async for line in container_lines(self.docker, container_id, follow=follow, tail=tail):
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

    async def ensure_image(self, image: str) -> None:
        """Pull a platform-registry image the engine lacks; ForbiddenImage for one carrying
        labels the platform forbids (images.py)."""
        await self.images.ensure(image)

    async def list_images(self, project: str) -> list[str]:
        return await self.images.list_images(project)

    async def remove_image(self, tag: str, *, force: bool = False) -> None:
        await self.images.remove(tag, force=force)


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


__all__ = [
    "GENERATED_DOCKERFILE",
    "LOG_CONFIG",
    "RESTART_POLICY",
    "BuildPlan",
    "DockerRuntime",
    "ForbiddenImage",
    "NetworkError",
    "VolumeError",
    "container_name",
    "network_name",
    "run_as_user",
]
