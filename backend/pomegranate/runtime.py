"""The Runtime interface Pomegranate drives, and the data types that cross it.

``DockerRuntime`` (docker_runtime.py) is the only implementation today; a cluster runtime can be
added later by implementing the same Protocol. Nothing outside a Runtime talks to the container
engine.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from backend.labels import Ownership

if TYPE_CHECKING:
    from backend.pomegranate.buildpacks import BuildPlan

LogCallback = Callable[[str], Awaitable[None]]
# A source tree as an uncompressed (or gzip/bz2/xz) tar archive: the bytes themselves, or the path
# of a file holding them (e.g. where the gRPC servicer spooled a client-streamed `git archive`).
SourceTar = bytes | str | os.PathLike[str]


class BuildError(Exception):
    """A build failed. ``step`` names the failing Dockerfile step when known."""

    def __init__(self, step: str | None, message: str, last_lines: list[str] | None = None):
        self.step = step
        self.message = message
        self.last_lines = list(last_lines or [])
        super().__init__(f"{message} (at {step})" if step else message)


class NotOwned(Exception):
    """The container is not one of this project's, of this installation (by its labels)."""


class VolumeInUse(Exception):
    """A volume cannot be removed: a container still uses it."""


class HealthCheckError(Exception):
    """A started container never became healthy; ``reason`` says why."""

    def __init__(self, reason: str, last_lines: list[str] | None = None):
        self.reason = reason
        self.last_lines = list(last_lines or [])
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Mount:
    """A project volume mounted into a container (issue 15)."""

    volume: str  # the project's name for it
    docker_name: str  # the engine's volume: labels.volume_name(...)
    path: str  # absolute path inside the container


@dataclass(slots=True)
class VolumeInfo:
    """A project volume as the engine sees it (issue 15)."""

    project: str
    volume: str  # the project's name for it
    docker_name: str
    size_bytes: int  # space in use; -1 when the engine does not say
    created_at: datetime | None = None


@dataclass(slots=True)
class ProcessSpec:
    """One container to run: one replica of one process type of one Application."""

    project: str
    application: int
    process_type: str
    replica: int
    image: str
    command: str | None  # run with /bin/sh -c; None: the image's own CMD
    env: dict[str, str]  # the project's variables; the runtime adds PORT and PAASTECH_*
    port: int  # the port the app listens on inside the container (PORT)
    hostnames: list[str]  # routed hostnames (web only): the default domain + custom domains
    memory_mb: int
    cpu: float
    pids_limit: int
    health_path: str | None = None
    # > cpu: the CPU it may use until healthy (a release's startup boost), then cpu applies.
    startup_cpu: float = 0.0
    hsts_seconds: int = 0  # > 0: the routing labels ask for HSTS (issue 21)
    # Project volumes (issue 15), created on first use, writable by the container's user.
    mounts: list[Mount] = field(default_factory=list)


@dataclass(slots=True)
class ContainerInfo:
    id: str
    name: str
    ownership: Ownership | None
    state: str  # the engine's state: created, running, restarting, exited, dead, ...
    running: bool
    host_port: int | None  # the 127.0.0.1 port the web port is published on, while running
    exit_code: int | None
    oom_killed: bool
    started_at: datetime | None
    image: str = ""
    restart_count: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)  # names of the networks it is attached to


@dataclass(slots=True)
class BuiltImage:
    # What runs: the platform registry's reference by digest,
    # 127.0.0.1:<port>/paastech/app-<project>@sha256:...
    image: str
    plan: BuildPlan
    image_id: str | None = None  # the manifest digest (sha256:...)
    size_bytes: int = 0  # uncompressed (builder.image_size): the image_mb_per_project quota


@dataclass(slots=True)
class RuntimeEvent:
    # start, die, oom, health_status, stop, kill, restart, destroy, create, ...
    kind: str
    container_id: str
    ownership: Ownership | None
    exit_code: int | None = None
    detail: str | None = None  # e.g. "healthy" for health_status
    time: datetime | None = None
    oneoff: bool = False  # a one-off command's container (issue 14)


class OneOff(Protocol):
    """A one-off command's container (issue 14), created by Runtime.start_oneoff."""

    id: str
    name: str

    async def read(self) -> tuple[int, bytes] | None:
        """The next output chunk: (1 stdout / 2 stderr, bytes); None at the end."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, rows: int, cols: int) -> None: ...

    async def wait(self) -> int:
        """The exit code, once the command has ended."""
        ...

    async def kill(self) -> None: ...

    async def remove(self) -> None:
        """Remove the container (killing it if needed); safe to call twice."""
        ...


@runtime_checkable
class Runtime(Protocol):
    async def build(
        self, project: str, application: int, source: SourceTar, on_log: LogCallback
    ) -> BuiltImage:
        """Build the source tree in isolation and push it to the platform registry as
        ``paastech/app-<project>:<application>``; the result names it by digest.

        Streams every build output line to ``on_log``; raises BuildError on failure or timeout.
        """
        ...

    async def start(self, spec: ProcessSpec) -> ContainerInfo:
        """Create and start one container; returns it with its published host port."""
        ...

    async def run_once(
        self,
        spec: ProcessSpec,
        on_log: LogCallback,
        timeout: float,  # noqa: ASYNC109 - the command's time limit, part of the API
    ) -> int:
        """Run ``spec`` once to completion in a fresh container (never restarted, never routed),
        streaming its output lines to ``on_log``; return its exit code and remove the container.
        Raises TimeoutError (after removing it) when it runs longer than ``timeout``."""
        ...

    async def start_oneoff(
        self,
        spec: ProcessSpec,
        command: list[str],
        *,
        tty: bool,
        attach: bool,
        size: tuple[int, int] | None = None,
    ) -> OneOff:
        """Create and start a one-off container of ``spec`` running ``command`` (argv, no shell):
        never restarted, never routed. ``attach``: stdin/stdout/stderr are wired to the handle
        before it starts (nothing of the output is lost)."""
        ...

    async def wait_healthy(
        self,
        container: ContainerInfo,
        path: str | None,
        timeout: float,  # noqa: ASYNC109 - the grace period of the check, part of the API
    ) -> None:
        """Return when the container answers; raise HealthCheckError otherwise."""
        ...

    async def stop(self, container_id: str, timeout: float = 10) -> None:  # noqa: ASYNC109
        """SIGTERM, then SIGKILL after ``timeout`` seconds; a missing container is fine."""
        ...

    async def restart(
        self,
        container_id: str,
        project: str,
        timeout: float = 10,  # noqa: ASYNC109 - the SIGTERM grace, part of the API
    ) -> ContainerInfo:
        """Restart one container in place (SIGTERM, SIGKILL after ``timeout`` s, start again):
        same id, image, env and labels. Only a container of ``project`` managed by this
        installation, as its ownership labels say; anything else raises NotOwned."""
        ...

    async def remove(self, container_id: str) -> None: ...

    async def inspect(self, container_id: str) -> ContainerInfo | None: ...

    async def list_containers(
        self, project: str | None = None, *, detail: bool = True
    ) -> list[ContainerInfo]:
        """This installation's containers (all states), of ``project`` only when given.

        ``detail=False`` (the reconcile cycle, issue 17): what one engine listing says, with no
        inspect per container: id, name, labels, state, running, networks, host port, image.
        exit_code, oom_killed, started_at and restart_count are then not read (None, False,
        None, 0): a caller that needs them asks for detail."""
        ...

    def logs(self, container_id: str, *, follow: bool, tail: int | None) -> AsyncGenerator[str]: ...

    def events(self) -> AsyncGenerator[RuntimeEvent]: ...

    async def list_images(self, project: str) -> list[str]: ...

    async def remove_image(self, tag: str, *, force: bool = False) -> None: ...

    async def remove_build_cache(self, project: str) -> None:
        """Drop the project's build cache (the project was deleted)."""
        ...

    async def remove_project_network(self, project: str) -> None:
        """Remove the project's own network once its containers are gone."""
        ...

    async def list_volumes(
        self, projects: list[str] | None = None, *, sizes: bool = False
    ) -> list[VolumeInfo]:
        """The project volumes of this installation (of ``projects`` only, when given), with the
        space each uses when ``sizes`` (else -1: measuring walks every volume)."""
        ...

    async def remove_volume(self, project: str, docker_name: str) -> None:
        """Remove one of ``project``'s volumes; a missing one is fine. Raises VolumeInUse while
        a container uses it, NotOwned when its labels say it is not ``project``'s."""
        ...

    async def close(self) -> None: ...
