"""The zero-downtime release of one Application, over a Runtime (no gRPC here).

A release starts every replica of the new Application, waits until all of them are healthy, and
only then stops the project's other containers (the previous release, or any leftover). If a start
or a health check fails, or the caller goes away before the switch, the new containers are removed
and the old ones are left serving untouched.

Live (issue 17): with the embedded ingress, the release is live once it routes every new web
container and no longer routes the old ones (their stop has begun: the "kill" event takes them out
of rotation); ``on_live`` fires then, and the old containers finish their requests in flight,
exit and are removed after it, before ``release()`` returns (the caller keeps the project's lock
until then). Without an ingress to ask (Traefik, no router), live is when the old ones are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from backend import labels as L
from backend.pomegranate.runtime import (
    ContainerInfo,
    HealthCheckError,
    Mount,
    ProcessSpec,
    Runtime,
)
from backend.settings import Settings

log = logging.getLogger(__name__)

ReleaseLog = Callable[[str], Awaitable[None]]


class RouteWaiter(Protocol):
    """Whether the router routes ``routed`` and none of ``unrouted`` (None: no
    router to ask) within ``seconds``; backend/ingress/route_status.py's ``wait_routes``."""

    async def __call__(
        self, routed: list[str], unrouted: list[str], seconds: float
    ) -> bool | None: ...


# Routers (Traefik's Docker provider, the embedded ingress) learn about the new containers from
# Docker events, with a short throttle. Stopping the old web containers at once could leave a
# moment where the router has dropped the old backends but not yet added the new ones; waiting this
# long first lets every router see the new containers (and finish requests in flight on the old).
WEB_DRAIN_SECONDS = 1.0
# SIGTERM -> SIGKILL grace of the containers a switch stops.
STOP_TIMEOUT_SECONDS = 10.0
# How long the switch waits for the ingress to route the new web containers (they are healthy:
# it is one probe away), then to take the old ones out of rotation (one event away). Past either,
# it goes on as without an ingress.
ROUTED_TIMEOUT_SECONDS = 10.0
UNROUTED_TIMEOUT_SECONDS = 5.0


@dataclass(slots=True)
class Process:
    type: str
    command: str | None  # None: the image's own CMD
    replicas: int


@dataclass(frozen=True, slots=True)
class VolumePlan:
    """A project volume and the process types it is mounted into (issue 15)."""

    name: str
    key: str
    path: str
    processes: tuple[str, ...]

    def mount(self, project: str, instance: str) -> Mount:
        return Mount(
            self.name, L.volume_name(project, self.name, self.key, instance=instance), self.path
        )


@dataclass(slots=True)
class ReleasePlan:
    """What must run for one Application (the gRPC ReleaseSpec, defaults applied)."""

    project: str
    application: int
    image: str
    processes: list[Process]
    env: dict[str, str] = field(default_factory=dict)
    port: int = 5000
    hostnames: list[str] = field(default_factory=list)
    memory_mb: int = 256
    cpu: float = 0.5
    health_path: str | None = None  # None: TCP check
    health_timeout: float = 30.0
    hsts_seconds: int = 0  # > 0: HSTS on HTTPS answers (web only)
    volumes: list[VolumePlan] = field(default_factory=list)

    def mounts(self, process_type: str, instance: str) -> list[Mount]:
        return [
            v.mount(self.project, instance) for v in self.volumes if process_type in v.processes
        ]

    def process_spec(self, process: Process, replica: int, settings: Settings) -> ProcessSpec:
        web = process.type == L.WEB_PROCESS
        return ProcessSpec(
            project=self.project,
            application=self.application,
            process_type=process.type,
            replica=replica,
            image=self.image,
            command=process.command,
            env=dict(self.env),
            port=self.port,
            hostnames=list(self.hostnames) if web else [],
            memory_mb=self.memory_mb,
            cpu=self.cpu,
            pids_limit=settings.pids_limit,
            health_path=self.health_path if web else None,
            hsts_seconds=self.hsts_seconds if web else 0,
            mounts=self.mounts(process.type, settings.instance),
        )

    def process_specs(self, settings: Settings) -> list[ProcessSpec]:
        """Every long-running container of the release, replicas numbered from 1 (the release
        phase's one-shot container is not one of them)."""
        return [
            self.process_spec(process, replica, settings)
            for process in self.processes
            if process.type != L.RELEASE_PROCESS
            for replica in range(1, process.replicas + 1)
        ]

    def release_command(self) -> Process | None:
        """The Procfile's `release:` process, when it has one."""
        return next((p for p in self.processes if p.type == L.RELEASE_PROCESS and p.command), None)

    def wants(self, process: str, replica: int) -> bool:
        return any(p.type == process and 1 <= replica <= p.replicas for p in self.processes)


@dataclass(slots=True)
class ReleaseResult:
    containers: list[ContainerInfo]
    stopped_applications: list[int]


OnLive = Callable[[ReleaseResult], Awaitable[None]]


async def _not_told(result: ReleaseResult) -> None:
    return None


@runtime_checkable
class RollingRuntime(Protocol):
    """A runtime that rolls a whole release out itself (issue 16: SwarmRuntime.deploy) instead of
    the container-by-container switch below; DockerRuntime is not one."""

    async def deploy(self, plan: ReleasePlan, on_log: ReleaseLog) -> ReleaseResult: ...


class ReleaseFailed(Exception):
    def __init__(self, reason: str, last_lines: list[str] | None = None):
        self.reason = reason
        self.last_lines = list(last_lines or [])
        super().__init__(reason)


def replica_name(process: str, replica: int) -> str:
    return f"{process}.{replica}"


class NothingToRestart(Exception):
    """No container of the asked process (replica) of that release exists."""


async def restart_processes(
    runtime: Runtime,
    project: str,
    application: int,
    process: str,
    replica: int,
    health_timeout: float,
) -> list[ContainerInfo]:
    """Restart the containers of one process type of a release (``replica`` 0) or one replica,
    in place (issue 19): same container, image, env and labels, so no new release.

    One at a time, each healthy again before the next is touched: routers take a container out of
    rotation on its SIGTERM ("kill" event) and back once it answers, so with 2+ web replicas the
    others serve meanwhile. A replica that does not come back stops the sequence (ReleaseFailed);
    the ones not reached yet are untouched. A crashed (exited) container is started again too.
    """
    targets = sorted(
        (
            c
            for c in await runtime.list_containers(project)
            if c.ownership is not None
            and c.ownership.project == project
            and c.ownership.application == application
            and c.ownership.process == process
            and replica in (0, c.ownership.replica)
        ),
        key=lambda c: c.ownership.replica if c.ownership else 0,
    )
    if not targets:
        what = replica_name(process, replica) if replica else f"{process} process"
        raise NothingToRestart(f"no {what} container of v{application} exists")
    restarted: list[ContainerInfo] = []
    for info in targets:
        assert info.ownership is not None
        name = replica_name(process, info.ownership.replica)
        if restarted and process == L.WEB_PROCESS:
            # Give routers the time to put the previous replica back in rotation (they probe it
            # after its "start" event) before this one leaves it.
            await asyncio.sleep(WEB_DRAIN_SECONDS)
        fresh = await runtime.restart(info.id, project, STOP_TIMEOUT_SECONDS)
        path = L.health_path_from_labels(fresh.labels) if process == L.WEB_PROCESS else None
        try:
            await runtime.wait_healthy(fresh, path, health_timeout)
        except HealthCheckError as exc:
            raise ReleaseFailed(
                f"{name} restarted but failed its health check: {exc.reason}", exc.last_lines
            ) from None
        restarted.append(await runtime.inspect(fresh.id) or fresh)
    return restarted


async def release_containers(runtime: Runtime, project: str) -> list[ContainerInfo]:
    """The project's containers that releases manage: all but one-off commands (issue 14),
    which a switch leaves running (as Heroku's one-off dynos outlive a deploy) and which their
    own session removes."""
    return [c for c in await runtime.list_containers(project) if not L.is_oneoff(c.labels)]


async def stop_and_remove(runtime: Runtime, containers: list[ContainerInfo]) -> None:
    """Stop (gracefully) then remove the containers, all in parallel."""

    async def one(info: ContainerInfo) -> None:
        try:
            await runtime.stop(info.id, timeout=STOP_TIMEOUT_SECONDS)
        finally:
            await runtime.remove(info.id)

    results = await asyncio.gather(*(one(c) for c in containers), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


async def remove_application(runtime: Runtime, project: str, application: int) -> None:
    """Remove every container of one Application, whatever the engine knows of them.

    Listing (instead of trusting what this process started) also catches a container created by
    a start that was interrupted before it returned.
    """
    containers = [
        c
        for c in await runtime.list_containers(project)
        if c.ownership is not None and c.ownership.application == application
    ]
    results = await asyncio.gather(
        *(runtime.remove(c.id) for c in containers), return_exceptions=True
    )
    for container, result in zip(containers, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("could not remove %s: %s", container.name, result)


async def release(
    runtime: Runtime,
    plan: ReleasePlan,
    on_log: ReleaseLog,
    settings: Settings,
    *,
    routes: RouteWaiter | None = None,
    on_live: OnLive = _not_told,
) -> ReleaseResult:
    """Start ``plan``, wait until healthy, then switch: stop the project's other containers.

    ``on_live`` is called once, with the result, as soon as the release is live (see the module's
    doc); ``release()`` returns once the old containers are gone.

    Raises ReleaseFailed (after removing the new containers) when a start or a health check
    fails. When cancelled before the switch, removes the new containers and re-raises; once the
    switch has begun it runs to the end even if cancelled, so the project is never left without
    its live release.
    """
    if isinstance(runtime, RollingRuntime):
        # A cluster runtime (Swarm, issue 16) rolls its services out itself, health-gated, with
        # its own rollback; the release phase still runs first, once.
        await _release_phase(runtime, plan, on_log, settings)
        result = await runtime.deploy(plan, on_log)
        await on_live(result)
        return result
    specs = plan.process_specs(settings)
    on_log, on_live = _timed(plan, on_log, on_live)
    # A release resumed after a crash (issue 20) may find what an earlier attempt left.
    existing = [
        c
        for c in await release_containers(runtime, plan.project)
        if c.ownership is not None and c.ownership.application == plan.application
    ]
    if existing:
        others = [
            c
            for c in await release_containers(runtime, plan.project)
            if c.ownership is None or c.ownership.application != plan.application
        ]
        if not others and len(existing) == len(specs) and all(c.running for c in existing):
            # The earlier attempt switched before its caller went away: it is live already.
            await on_log(f"Release {plan.application} is live (finished before an interruption)")
            result = ReleaseResult(containers=existing, stopped_applications=[])
            await on_live(result)
            return result
        await on_log(f"Removing what an interrupted attempt of release {plan.application} left")
        await remove_application(runtime, plan.project, plan.application)
    started: list[tuple[ProcessSpec, ContainerInfo]] = []
    await _release_phase(runtime, plan, on_log, settings)
    try:
        for spec in specs:
            name = replica_name(spec.process_type, spec.replica)
            # More CPU until healthy (the app's start is mostly CPU), then its limit: a release's
            # start only; the runtime settles it when the health check passes.
            spec.startup_cpu = settings.startup_cpu
            await on_log(f"Starting {name}")
            try:
                info = await runtime.start(spec)
            except Exception as exc:
                log.exception("starting %s of %s failed", name, plan.project)
                raise ReleaseFailed(f"{name} failed to start: {exc}") from None
            started.append((spec, info))
        await _wait_all_healthy(runtime, plan, started, on_log)
    except BaseException:
        # ReleaseFailed, CancelledError (the caller went away), anything unexpected: the new
        # Application must not stay half started. Shielded so a second cancel cannot cut it short.
        await asyncio.shield(remove_application(runtime, plan.project, plan.application))
        raise

    switch = asyncio.ensure_future(_switch(runtime, plan, started, on_log, routes, on_live))
    try:
        return await asyncio.shield(switch)
    except asyncio.CancelledError:
        # The switch keeps running on its own; wait for it without letting the cancel stop it.
        with contextlib.suppress(Exception):
            await switch
        raise


def _timed(plan: ReleasePlan, on_log: ReleaseLog, on_live: OnLive) -> tuple[ReleaseLog, OnLive]:
    """``on_log`` and ``on_live`` that also note when each step's line came: logged once live,
    e.g. "Starting web.1 at 4 ms, web.1 is healthy at 512 ms, ..." (where a switch's time went)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    steps: list[str] = []

    async def timed_log(line: str) -> None:
        steps.append(f"{line[:40]} at {(loop.time() - started) * 1000:.0f} ms")
        await on_log(line)

    async def timed_live(result: ReleaseResult) -> None:
        log.info("release %d of %s: %s", plan.application, plan.project, "; ".join(steps))
        await on_live(result)

    return timed_log, timed_live


async def _release_phase(
    runtime: Runtime, plan: ReleasePlan, on_log: ReleaseLog, settings: Settings
) -> None:
    """Run the Procfile's `release:` command once in a container of the new image with the new
    env, before any container of the new release starts (Heroku's release phase). A non-zero exit
    or a timeout fails the release: nothing of it has started, the old release keeps serving."""
    process = plan.release_command()
    if process is None:
        return
    spec = plan.process_spec(Process(process.type, process.command, 1), 1, settings)
    spec.health_path = None
    await on_log(f"Running the release phase: {process.command}")
    last: list[str] = []

    async def output(line: str) -> None:
        last.append(line)
        del last[:-20]
        await on_log(f"release: {line}")

    timeout = settings.release_timeout_seconds
    try:
        code = await runtime.run_once(spec, output, timeout)
    except TimeoutError:
        raise ReleaseFailed(
            f"the release phase took longer than {timeout}s (release_timeout_seconds)", last
        ) from None
    except Exception as exc:
        log.exception("the release phase of %s failed to run", plan.project)
        raise ReleaseFailed(f"the release phase could not run: {exc}") from None
    if code != 0:
        raise ReleaseFailed(f"the release phase ({process.command}) exited with code {code}", last)
    await on_log("Release phase done")


async def _wait_all_healthy(
    runtime: Runtime,
    plan: ReleasePlan,
    started: list[tuple[ProcessSpec, ContainerInfo]],
    on_log: ReleaseLog,
) -> None:
    async def one(spec: ProcessSpec, info: ContainerInfo) -> None:
        name = replica_name(spec.process_type, spec.replica)
        path = spec.health_path if spec.process_type == L.WEB_PROCESS else None
        try:
            await runtime.wait_healthy(info, path, plan.health_timeout)
        except HealthCheckError as exc:
            raise ReleaseFailed(
                f"{name} failed its health check: {exc.reason}", exc.last_lines
            ) from None
        await on_log(f"{name} is healthy")

    tasks = [asyncio.create_task(one(spec, info)) for spec, info in started]
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if (error := task.exception()) is not None:
                raise error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _switch(
    runtime: Runtime,
    plan: ReleasePlan,
    started: list[tuple[ProcessSpec, ContainerInfo]],
    on_log: ReleaseLog,
    routes: RouteWaiter | None,
    on_live: OnLive,
) -> ReleaseResult:
    """Go live, then stop and remove every container of the project that is not of the new
    Application (see the module's doc for when "live" is)."""
    others = [
        c
        for c in await release_containers(runtime, plan.project)
        if c.ownership is None or c.ownership.application != plan.application
    ]
    result = ReleaseResult(
        containers=[info for _, info in started],
        stopped_applications=sorted(
            {c.ownership.application for c in others if c.ownership is not None}
        ),
    )
    new_web = [info.id for spec, info in started if spec.process_type == L.WEB_PROCESS]
    old_web = [c.id for c in others if c.ownership is None or c.ownership.process == L.WEB_PROCESS]
    routed: bool | None = None
    if new_web and plan.hostnames and routes is not None:
        routed = await routes(new_web, [], ROUTED_TIMEOUT_SECONDS)
        if routed is False:
            log.warning("the ingress did not route %s in time; switching anyway", new_web)
    if not others:
        await on_log(f"Release {plan.application} is live")
        await on_live(result)
        return result
    if old_web and not routed:
        # No router said it routes the new containers: give every router (Traefik's Docker
        # provider throttles its events) the time to see them before the old ones go.
        await asyncio.sleep(WEB_DRAIN_SECONDS)
    await on_log(f"Stopping {', '.join(c.name for c in others)}")
    stopping = asyncio.ensure_future(stop_and_remove(runtime, others))
    if routed and routes is not None:
        # The stop's "kill" event takes the old ones out of the ingress's rotation at once; from
        # then on every new request reaches the new release, while the old containers finish
        # the ones they hold and exit (the drain, after on_live).
        if old_web:
            await routes(new_web, old_web, UNROUTED_TIMEOUT_SECONDS)
        await on_log(f"Release {plan.application} is live")
        await on_live(result)
        await stopping
    else:
        await stopping
        await on_log(f"Release {plan.application} is live")
        await on_live(result)
    return result
