"""The Pomegranate gRPC servicer (grpc.aio): the contract of backend/rpc/pomegranate.proto on top
of a Runtime. The deployment logic lives in release.py and reconciler.py; this module only moves
messages, streams and errors across the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiodocker
import grpc

from backend import deploy_output
from backend import labels as L
from backend.errors import DISK_FULL_MESSAGE, is_disk_full
from backend.ingress import route_status
from backend.metrics.containers import ContainerSampler
from backend.metrics.swarm import SwarmSampler
from backend.pomegranate import convert
from backend.pomegranate.addons import AddonError, AddonSpec, AddonState, DockerAddons
from backend.pomegranate.addons import check_kind as check_addon_kind
from backend.pomegranate.addons import check_name as check_addon_name
from backend.pomegranate.convert import BadRequest
from backend.pomegranate.node_service import NodeRpcs
from backend.pomegranate.procfile import validate_process_type
from backend.pomegranate.reconciler import reconcile
from backend.pomegranate.release import (
    STOP_TIMEOUT_SECONDS,
    NothingToRestart,
    Process,
    ReleaseFailed,
    ReleaseResult,
    release,
    restart_processes,
    stop_and_remove,
)
from backend.pomegranate.runtime import (
    BuildError,
    ContainerInfo,
    NotOwned,
    OneOff,
    ProcessSpec,
    Runtime,
    VolumeInUse,
)
from backend.routing import routing_dir
from backend.rpc import pomegranate_pb2 as pb
from backend.rpc import pomegranate_pb2_grpc as pb_grpc
from backend.rpc.servicer import ServicerContext
from backend.settings import Settings, get_settings

if TYPE_CHECKING:
    from backend.pomegranate.swarm_addons import SwarmAddons

log = logging.getLogger(__name__)

# A pushed source tree larger than this is refused (the API streams `git archive` output);
# Settings.max_source_bytes overrides it where that setting exists.
MAX_SOURCE_BYTES = 512 * 1024 * 1024
TMP_PREFIX = "build-"
TMP_SUFFIX = ".tar"
# An "oom" event is followed by the container's "die" within moments; older ones are stale.
OOM_MEMORY_SECONDS = 30.0
_DONE = object()
# ListProcesses waits at most this long for a draining release (issue 17): its stop grace, plus
# the removal.
DRAIN_WAIT_SECONDS = STOP_TIMEOUT_SECONDS + 5.0
# Exit status of a one-off command stopped by its time limit (as GNU timeout(1)).
RUN_TIMEOUT_EXIT = 124
# Output chunks queued towards a slow reader before the engine's stream is left to back up.
RUN_QUEUE = 64
ADDON_CHUNK = 1024 * 1024  # backup bytes per gRPC message
MAX_ADDON_NAMES = 1000  # add-ons per AddonVolumeSizes call

T = TypeVar("T")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n} bytes"


def _failure(reason: str, last_lines: list[str] | None = None) -> pb.Failure:
    return pb.Failure(reason=reason, last_lines=list(last_lines or []))


def _unary(
    method: Callable[..., Awaitable[T]],
) -> Callable[..., Awaitable[T]]:
    """Bad input -> INVALID_ARGUMENT; an engine error -> INTERNAL with its message."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: ServicerContext) -> T:
        try:
            return await method(self, request, context)
        except BadRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            log.exception("%s failed", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__} failed: {exc}")
        raise AssertionError("unreachable")  # pragma: no cover - abort always raises

    return wrapper


class PomegranateService(NodeRpcs, pb_grpc.PomegranateServicer):
    def __init__(self, runtime: Runtime, settings: Settings | None = None) -> None:
        self.runtime = runtime
        self.settings = settings or get_settings()
        self._build_slots = asyncio.Semaphore(self.settings.max_concurrent_builds)
        # Issue 18, made at the first sample.
        self._sampler: ContainerSampler | SwarmSampler | None = None
        self._builds_running = 0
        # One release (or stop/remove) of a project at a time.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Projects whose previous release is draining after a switch (issue 17): set when done.
        self._draining: dict[str, asyncio.Event] = {}
        # Releases whose caller went away finish their clean-up on their own; keep them referenced.
        self._background: set[asyncio.Task[Any]] = set()
        # One-off commands (issue 14): containers whose session runs here (Reconcile leaves them
        # alone), projects with a one-off being created, and the detached ones' watchers.
        self._oneoffs: set[str] = set()
        self._oneoffs_starting: defaultdict[str, int] = defaultdict(int)
        self._detached: set[asyncio.Task[Any]] = set()
        self._addons: DockerAddons | SwarmAddons | None = None

    # ------------------------------------------------------------------------------ helpers

    async def _route_waiter(
        self, routed: list[str], unrouted: list[str], seconds: float
    ) -> bool | None:
        """Ask the embedded ingress whether it routes a release (issue 17), on its socket in the
        routing directory it shares with the API; None when no ingress answers there."""
        path = route_status.socket_path(routing_dir(self.settings))
        return await route_status.wait_routes(path, routed, unrouted, seconds)

    @property
    def tmp_dir(self) -> Path:
        return self.settings.data_dir / "tmp"

    def clean_tmp(self) -> int:
        """Remove spooled build sources left behind by a previous run (a crash mid-build)."""
        removed = 0
        if not self.tmp_dir.is_dir():
            return 0
        for path in self.tmp_dir.glob(f"{TMP_PREFIX}*{TMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background clean-ups (releases whose caller left) before shutting down.
        Detached one-offs lose their supervisor: stopped and removed now (a restarted
        Pomegranate's reconcile would remove them anyway, see reconciler.decide)."""
        for task in list(self._detached):
            task.cancel()
        pending = [*self._background, *self._detached]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------------------ Build

    async def Build(
        self, request_iterator: AsyncIterator[pb.BuildChunk], context: ServicerContext
    ) -> AsyncIterator[pb.BuildEvent]:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "header":
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "the first Build message must be the header (project, application)",
            )
        header = first.header
        try:
            convert.check_project(header.project)
        except BadRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if header.application < 1:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "application numbers start at 1")

        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f"{TMP_PREFIX}{header.project}-{header.application}-",
            suffix=TMP_SUFFIX,
            dir=self.tmp_dir,
        )
        path = Path(name)
        limit = getattr(self.settings, "max_source_bytes", MAX_SOURCE_BYTES)
        try:
            size = 0
            try:
                with os.fdopen(fd, "wb") as fh:
                    async for chunk in requests:
                        if chunk.WhichOneof("part") != "data":
                            await context.abort(
                                grpc.StatusCode.INVALID_ARGUMENT,
                                "only the first Build message may be a header; then tar data",
                            )
                        size += len(chunk.data)
                        if size > limit:
                            too_big = f"the source archive is larger than {_size(limit)}"
                            yield pb.BuildEvent(failure=_failure(too_big))
                            return
                        await asyncio.to_thread(fh.write, chunk.data)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                yield pb.BuildEvent(failure=_failure(DISK_FULL_MESSAGE))
                return
            if size == 0:
                yield pb.BuildEvent(failure=_failure("no source archive was received"))
                return
            async for event in self._build(header.project, header.application, path):
                yield event
        finally:
            # Synchronous on purpose: it must also run when the call was cancelled.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    async def _build(
        self, project: str, application: int, source: Path
    ) -> AsyncIterator[pb.BuildEvent]:
        if self._build_slots.locked():
            yield pb.BuildEvent(
                log=deploy_output.heading(
                    f"waiting for a build slot ({self._builds_running} builds running)"
                )
            )
        async with self._build_slots:
            self._builds_running += 1
            queue: asyncio.Queue[Any] = asyncio.Queue()

            async def on_log(line: str) -> None:
                queue.put_nowait(line)

            async def run() -> Any:
                try:
                    return await self.runtime.build(project, application, source, on_log)
                finally:
                    queue.put_nowait(_DONE)

            task = asyncio.create_task(run())
            try:
                while (line := await queue.get()) is not _DONE:
                    yield pb.BuildEvent(log=line)
                try:
                    built = await task
                except BuildError as exc:
                    yield pb.BuildEvent(failure=_failure(str(exc), exc.last_lines))
                    return
                except Exception as exc:
                    log.exception("build of %s/%d failed", project, application)
                    yield pb.BuildEvent(failure=_failure(f"build failed: {exc}"))
                    return
                result = convert.build_result(built)
                result.image_bytes = built.size_bytes
                yield pb.BuildEvent(result=result)
            finally:
                self._builds_running -= 1
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task

    # ------------------------------------------------------------------------------ Release

    async def Release(
        self, request: pb.ReleaseSpec, context: ServicerContext
    ) -> AsyncIterator[pb.ReleaseEvent]:
        try:
            plan = convert.release_plan(request, self.settings)
        except BadRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        # Unbounded on purpose: the release must never block on a slow or vanished reader.
        queue: asyncio.Queue[Any] = asyncio.Queue()

        live = False
        drained = asyncio.Event()

        async def on_log(line: str) -> None:
            queue.put_nowait(pb.ReleaseEvent(log=line))

        async def on_live(result: ReleaseResult) -> None:
            # Issue 17: the caller hears "done" (and the stream ends) as soon as the release is
            # live; the old containers drain after, still under the project's lock.
            nonlocal live
            live = True
            self._draining[plan.project] = drained
            done = pb.ReleaseDone(
                containers=[convert.container(c) for c in result.containers],
                stopped_applications=result.stopped_applications,
            )
            queue.put_nowait(pb.ReleaseEvent(done=done))
            queue.put_nowait(_DONE)

        async def run() -> None:
            try:
                lock = self._locks[plan.project]
                if lock.locked():
                    await on_log(f"Waiting for another release of {plan.project} to finish")
                async with lock:
                    try:
                        await release(
                            self.runtime,
                            plan,
                            on_log,
                            self.settings,
                            routes=self._route_waiter,
                            on_live=on_live,
                        )
                    except ReleaseFailed as exc:
                        queue.put_nowait(
                            pb.ReleaseEvent(failure=_failure(exc.reason, exc.last_lines))
                        )
                    except Exception as exc:
                        if live:  # the drain of the old containers failed, after the switch
                            log.exception("draining %s failed", plan.project)
                        else:
                            log.exception("release of %s/%d failed", plan.project, plan.application)
                            queue.put_nowait(
                                pb.ReleaseEvent(failure=_failure(f"release failed: {exc}"))
                            )
                    finally:
                        drained.set()
                        if self._draining.get(plan.project) is drained:
                            del self._draining[plan.project]
            finally:
                queue.put_nowait(_DONE)

        task = asyncio.create_task(run())
        self._track(task)
        try:
            while (event := await queue.get()) is not _DONE:
                yield event
        finally:
            if not task.done() and not live:
                # The caller went away: release() removes the new containers on cancel (or, past
                # the switch, finishes it). The task stays tracked until its clean-up is over.
                # Once live, the task is only draining the old release: it runs to its end.
                log.warning(
                    "release of %s/%d cancelled by the caller", plan.project, plan.application
                )
                task.cancel()

    # ------------------------------------------------------------------------------ projects

    @_unary
    async def StopProject(self, request: pb.ProjectRef, context: ServicerContext) -> pb.Empty:
        project = convert.check_project(request.project)
        async with self._locks[project]:
            await stop_and_remove(self.runtime, await self.runtime.list_containers(project))
        return pb.Empty()

    @_unary
    async def RemoveProject(self, request: pb.ProjectRef, context: ServicerContext) -> pb.Empty:
        project = convert.check_project(request.project)
        async with self._locks[project]:
            containers = await self.runtime.list_containers(project)
            await asyncio.gather(*(self.runtime.remove(c.id) for c in containers))
            for tag in await self.runtime.list_images(project):
                await self.runtime.remove_image(tag, force=True)
            await self.runtime.remove_build_cache(project)
            await self.runtime.remove_project_network(project)
            # Its volumes last, once no container uses them (issue 15).
            for volume in await self.runtime.list_volumes([project]):
                await self.runtime.remove_volume(project, volume.docker_name)
        return pb.Empty()

    @_unary
    async def ListVolumes(
        self, request: pb.VolumesRequest, context: ServicerContext
    ) -> pb.VolumeList:
        projects = [convert.check_project(p) for p in request.projects]
        if not projects:
            return pb.VolumeList()
        volumes = await self.runtime.list_volumes(projects, sizes=request.sizes)
        return pb.VolumeList(volumes=[convert.volume(v) for v in volumes])

    @_unary
    async def RemoveVolume(self, request: pb.VolumeRef, context: ServicerContext) -> pb.Empty:
        project = convert.check_project(request.project)
        name = convert.check_docker_volume(project, request.docker_name, self.settings.instance)
        # The project's lock: no release starts a container on it meanwhile.
        async with self._locks[project]:
            try:
                await self.runtime.remove_volume(project, name)
            except VolumeInUse as exc:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            except NotOwned as exc:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        return pb.Empty()

    # ------------------------------------------------------------------------------ add-ons

    @property
    def addons(self) -> DockerAddons | SwarmAddons:
        if self._addons is None:
            from backend.pomegranate.docker_runtime import DockerRuntime
            from backend.pomegranate.swarm_addons import SwarmAddons
            from backend.pomegranate.swarm_runtime import SwarmRuntime

            if isinstance(self.runtime, SwarmRuntime):  # issue 16: a service pinned to a node
                self._addons = SwarmAddons(self.runtime)
                return self._addons
            if not isinstance(self.runtime, DockerRuntime):
                raise BadRequest("add-ons need the Docker runtime")
            self._addons = DockerAddons(self.runtime)
        return self._addons

    @staticmethod
    def _addon_ref(ref: pb.AddonRef) -> tuple[str, str]:
        try:
            return check_addon_name(ref.name), check_addon_kind(ref.kind or "postgres")
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    @staticmethod
    def _addon_state(state: AddonState) -> pb.AddonState:
        return pb.AddonState(
            state=state.state,
            running=state.running,
            health=state.health,
            projects=state.projects,
            started_at=state.started_at,
            restart_count=state.restart_count,
        )

    @_unary
    async def EnsureAddon(self, request: pb.AddonSpec, context: ServicerContext) -> pb.AddonState:
        for project in request.projects:
            convert.check_project(project)
        spec = AddonSpec(
            name=request.name,
            kind=request.kind,
            image=request.image,
            password=request.password,
            memory_mb=request.memory_mb,
            projects=list(request.projects),
            alias=request.alias or request.name,
        )
        if spec.memory_mb < 16:
            raise BadRequest("an add-on needs at least 16 MB of memory")
        try:
            state = await self.addons.ensure(spec)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        except AddonError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return self._addon_state(state)

    @_unary
    async def RemoveAddon(self, request: pb.AddonRef, context: ServicerContext) -> pb.Empty:
        name, _kind = self._addon_ref(request)
        await self.addons.remove(name)
        return pb.Empty()

    @_unary
    async def AddonStatus(self, request: pb.AddonRef, context: ServicerContext) -> pb.AddonState:
        name, _kind = self._addon_ref(request)
        return self._addon_state(await self.addons.status(name))

    async def BackupAddon(
        self, request: pb.AddonRef, context: ServicerContext
    ) -> AsyncIterator[pb.DataChunk]:
        try:
            name, kind = self._addon_ref(request)
        except BadRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            async for data in self.addons.backup(name, kind):
                for i in range(0, len(data), ADDON_CHUNK):
                    yield pb.DataChunk(data=data[i : i + ADDON_CHUNK])
        except AddonError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))

    @_unary
    async def RestoreAddon(
        self, request_iterator: AsyncIterator[pb.RestoreChunk], context: ServicerContext
    ) -> pb.Empty:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "ref":
            raise BadRequest("the first RestoreAddon message must be the add-on")
        name, kind = self._addon_ref(first.ref)
        data = bytearray()
        async for chunk in requests:
            data.extend(chunk.data)
            if len(data) > self.settings.addon_restore_max_bytes:
                raise BadRequest("the backup is larger than addon_restore_max_bytes")
        try:
            await self.addons.restore(name, kind, bytes(data))
        except AddonError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return pb.Empty()

    async def AddonLogs(
        self, request: pb.AddonLogsRequest, context: ServicerContext
    ) -> AsyncIterator[pb.LogLine]:
        try:
            name, kind = self._addon_ref(request.ref)
        except BadRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if request.tail < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tail must not be negative")
        try:
            addons = self.addons
        except BadRequest as exc:  # not the Docker runtime
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            async with contextlib.aclosing(
                addons.logs(name, tail=request.tail, follow=request.follow)
            ) as lines:
                async for line in lines:
                    yield pb.LogLine(process=kind, line=line)
        except AddonError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))

    @_unary
    async def AddonVolumeSizes(
        self, request: pb.AddonVolumesRequest, context: ServicerContext
    ) -> pb.AddonVolumeSizeList:
        if len(request.names) > MAX_ADDON_NAMES:
            raise BadRequest(f"at most {MAX_ADDON_NAMES} add-ons per call")
        try:
            sizes = await self.addons.volume_sizes(list(request.names))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return pb.AddonVolumeSizeList(
            volumes=[pb.AddonVolumeSize(name=n, size_bytes=b) for n, b in sizes.items()]
        )

    @_unary
    async def ListProcesses(
        self, request: pb.ProjectRef, context: ServicerContext
    ) -> pb.ProcessList:
        project = convert.check_project(request.project)
        draining = self._draining.get(project)
        if draining is not None:
            # Issue 17: a release went live and the old one is draining. Answer once it is gone
            # (at most the stop grace), so processes (`paastech ps`) read after the release is
            # RUNNING show the live release only, never the old one's last seconds.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(draining.wait(), DRAIN_WAIT_SECONDS)
        containers = await self.runtime.list_containers(project)
        return pb.ProcessList(containers=[convert.container(c) for c in containers])

    @_unary
    async def RestartProcesses(
        self, request: pb.RestartRequest, context: ServicerContext
    ) -> pb.ProcessList:
        project = convert.check_project(request.project)
        try:
            validate_process_type(request.process)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if request.application < 1 or request.replica < 0 or request.health_timeout < 0:
            raise BadRequest("application numbers start at 1; replica and timeout are >= 0")
        timeout = request.health_timeout or self.settings.health_check_timeout_seconds
        # The project's lock: no release switches containers under us, and reconcile leaves the
        # project alone while a container is between its stop and its start.
        async with self._locks[project]:
            try:
                restarted = await restart_processes(
                    self.runtime,
                    project,
                    request.application,
                    request.process,
                    request.replica,
                    timeout,
                )
            except NothingToRestart as exc:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            except NotOwned as exc:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
            except ReleaseFailed as exc:
                await context.abort(grpc.StatusCode.ABORTED, exc.reason)
        return pb.ProcessList(containers=[convert.container(c) for c in restarted])

    @_unary
    async def PruneImages(
        self, request: pb.PruneRequest, context: ServicerContext
    ) -> pb.PruneReply:
        project = convert.check_project(request.project)
        keep = set(request.keep)
        # The project's lock: the old release may still be draining (issue 17); its image is
        # free once its containers are gone.
        async with self._locks[project]:
            removed = await self._prune_images(project, keep)
        return pb.PruneReply(removed=removed)

    async def _prune_images(self, project: str, keep: set[str]) -> list[str]:
        removed: list[str] = []
        for tag in await self.runtime.list_images(project):
            # Tags are paastech/app-<project>:<application>; a bare application number also keeps.
            if tag in keep or tag.rpartition(":")[2] in keep:
                continue
            try:
                await self.runtime.remove_image(tag)
            except Exception as exc:
                # Still used by a container: it stays until that container is gone.
                log.warning("kept image %s: %s", tag, exc)
                continue
            removed.append(tag)
        return removed

    @_unary
    async def Reconcile(
        self, request: pb.DesiredState, context: ServicerContext
    ) -> pb.ReconcileReport:
        desired = convert.desired_state(request, self.settings)
        # A release running here right now owns its project's containers: leave them to it.
        busy = {project for project, lock in self._locks.items() if lock.locked()}
        result = await reconcile(
            self.runtime, desired, self.settings, skip=busy, active_oneoffs=await self._active()
        )
        log.info(
            "reconciled: adopted %d, started %s, removed %s",
            len(result.adopted),
            result.started,
            result.removed,
        )
        return convert.reconcile_report(result)

    # ------------------------------------------------------------------------------ one-offs

    async def _active(self) -> frozenset[str]:
        """Ids of the one-off containers whose sessions run here, including any being created
        right now (not yet known by id)."""
        active = set(self._oneoffs)
        for project, starting in list(self._oneoffs_starting.items()):
            if starting > 0:
                active.update(
                    c.id
                    for c in await self.runtime.list_containers(project)
                    if L.is_oneoff(c.labels)
                )
        return frozenset(active)

    async def Run(
        self, request_iterator: AsyncIterator[pb.RunInput], context: ServicerContext
    ) -> AsyncIterator[pb.RunOutput]:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "start":
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first Run message must be the start"
            )
        start = first.start
        try:
            plan = convert.release_plan(start.spec, self.settings)
        except BadRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        command = list(start.command)
        if not command or not command[0]:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the command is empty")
        spec = plan.process_spec(Process(L.ONEOFF_PROCESS, None, 1), 1, self.settings)
        limit = self.settings.run_timeout_seconds
        timeout = min(start.timeout_seconds, limit) if start.timeout_seconds > 0 else limit
        size = (start.size.rows, start.size.cols) if start.HasField("size") else None
        self._oneoffs_starting[plan.project] += 1
        try:
            handle = await self._start_oneoff(start, spec, command, size)
        except Exception as exc:
            log.warning("one-off of %s did not start: %s", plan.project, exc)
            yield pb.RunOutput(failure=_failure(f"the command could not start: {exc}"))
            return
        else:
            self._oneoffs.add(handle.id)
        finally:
            self._oneoffs_starting[plan.project] -= 1
        log.info("one-off %s started (detach=%s)", handle.name, start.detach)
        if start.detach:
            task = asyncio.create_task(self._finish_detached(handle, timeout))
            self._detached.add(task)
            task.add_done_callback(self._detached.discard)
            yield pb.RunOutput(started=handle.name)
            return

        out: asyncio.Queue[Any] = asyncio.Queue(maxsize=RUN_QUEUE)

        async def session() -> None:
            try:
                code, reason = await self._session(handle, requests, out, timeout)
                # Gone before the caller hears the exit status: when `paastech run` or ssh
                # returns, the container is already removed.
                await asyncio.shield(self._remove_oneoff(handle))
                await out.put(pb.RunOutput(exit=pb.RunExit(code=code, reason=reason)))
            except Exception as exc:
                log.exception("one-off %s failed", handle.name)
                await out.put(pb.RunOutput(failure=_failure(f"the command failed: {exc}")))
            finally:
                await out.put(_DONE)

        task = asyncio.create_task(session())
        try:
            yield pb.RunOutput(started=handle.name)
            while (event := await out.get()) is not _DONE:
                yield event
        finally:
            # Ended, failed, or the caller went away (Ctrl-C, a dropped connection): the
            # container goes either way. Shielded: a second cancel must not leave it behind.
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.shield(self._remove_oneoff(handle))

    async def _start_oneoff(
        self,
        start: pb.RunStart,
        spec: ProcessSpec,
        command: list[str],
        size: tuple[int, int] | None,
    ) -> OneOff:
        """The one-off's container. An add-on's client tool on a Swarm runs beside the add-on's
        server on its node (swarm_addon_tools.py): the host engine reaches no overlay."""
        attach = not start.detach
        if start.addon:
            from backend.pomegranate.swarm_addon_tools import start_tool
            from backend.pomegranate.swarm_addons import SwarmAddons

            addons = self.addons
            if isinstance(addons, SwarmAddons):
                name = check_addon_name(start.addon)
                return await start_tool(
                    addons, name, spec, command, tty=start.tty, attach=attach, size=size
                )
        return await self.runtime.start_oneoff(
            spec, command, tty=start.tty, attach=attach, size=size
        )

    async def _session(
        self,
        handle: OneOff,
        requests: AsyncIterator[pb.RunInput],
        out: asyncio.Queue[Any],
        timeout: float,  # noqa: ASYNC109 - the command's time limit
    ) -> tuple[int, str]:
        async def output() -> None:
            while (chunk := await handle.read()) is not None:
                stream, data = chunk
                if stream == 2:
                    await out.put(pb.RunOutput(stderr=data))
                else:
                    await out.put(pb.RunOutput(stdout=data))

        async def stdin() -> None:
            with contextlib.suppress(Exception):  # the command ended, or the caller went away
                async for message in requests:
                    part = message.WhichOneof("part")
                    if part == "stdin":
                        await handle.write(message.stdin)
                    elif part == "stdin_closed":
                        await handle.close_stdin()
                    elif part == "resize":
                        await handle.resize(message.resize.rows, message.resize.cols)

        reader = asyncio.create_task(output())
        feeder = asyncio.create_task(stdin())
        try:
            try:
                async with asyncio.timeout(timeout):
                    await reader
                    return await handle.wait(), ""
            except TimeoutError:
                await handle.kill()
                return RUN_TIMEOUT_EXIT, (
                    f"stopped: the command ran longer than {timeout:g} s (run_timeout_seconds)"
                )
        finally:
            for t in (reader, feeder):
                t.cancel()
            await asyncio.gather(reader, feeder, return_exceptions=True)

    async def _finish_detached(self, handle: OneOff, timeout: float) -> None:  # noqa: ASYNC109
        """A detached one-off: removed when it ends, or killed and removed at its time limit."""
        try:
            async with asyncio.timeout(timeout):
                code = await handle.wait()
            log.info("detached one-off %s exited with code %d", handle.name, code)
        except TimeoutError:
            log.info("detached one-off %s stopped after %g s", handle.name, timeout)
        except Exception as exc:
            log.warning("detached one-off %s: %s", handle.name, exc)
        finally:
            await asyncio.shield(self._remove_oneoff(handle))

    async def _remove_oneoff(self, handle: OneOff) -> None:
        try:
            await handle.remove()
        except Exception as exc:
            # Reconcile removes it later: it is no longer in the active set.
            log.warning("could not remove one-off %s: %s", handle.name, exc)
        finally:
            self._oneoffs.discard(handle.id)

    # ------------------------------------------------------------------------------ streams

    async def RuntimeLogs(
        self, request: pb.LogsRequest, context: ServicerContext
    ) -> AsyncIterator[pb.LogLine]:
        try:
            project = convert.check_project(request.project)
        except BadRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if request.tail < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tail must not be negative")
        follow = request.follow
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
        tasks: dict[str, asyncio.Task[None]] = {}
        seen: set[str] = set()

        async def pump(info: ContainerInfo, tail: int | None) -> None:
            own = info.ownership
            assert own is not None
            try:
                async with contextlib.aclosing(
                    self.runtime.logs(info.id, follow=follow, tail=tail)
                ) as lines:
                    async for line in lines:
                        await queue.put(
                            pb.LogLine(
                                process=own.process,
                                replica=own.replica,
                                application=own.application,
                                line=line,
                            )
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the container was removed meanwhile
                log.debug("logs of %s ended: %s", info.name, exc)
            if not follow:
                await queue.put(_DONE)

        def attach(info: ContainerInfo, tail: int | None) -> None:
            current = tasks.get(info.id)
            if info.ownership is None or (current is not None and not current.done()):
                return
            seen.add(info.id)
            tasks[info.id] = asyncio.create_task(pump(info, tail))

        async def watch_starts() -> None:
            async with contextlib.aclosing(self.runtime.events()) as events:
                async for event in events:
                    own = event.ownership
                    if event.kind != "start" or own is None or own.project != project:
                        continue
                    info = await self.runtime.inspect(event.container_id)
                    if info is not None:
                        # A new container: all its output; a restarted one: only what is new.
                        attach(info, 0 if event.container_id in seen else None)

        watcher = asyncio.create_task(watch_starts()) if follow else None
        try:
            if watcher is not None:
                await asyncio.sleep(0)  # let the event stream start opening first
            containers = [c for c in await self.runtime.list_containers(project) if c.running]
            for info in containers:
                attach(info, request.tail)
            remaining = len(tasks)
            while follow or remaining:
                item = await queue.get()
                if item is _DONE:
                    remaining -= 1
                else:
                    yield item
        finally:
            everything = [*tasks.values(), *([watcher] if watcher else [])]
            for task in everything:
                task.cancel()
            await asyncio.gather(*everything, return_exceptions=True)

    async def Watch(
        self, request: pb.WatchRequest, context: ServicerContext
    ) -> AsyncIterator[pb.RuntimeEvent]:
        # Headers at once: the caller's wait_for_connection() returns now, not at the first
        # container event (the API waits for this connection before running a release).
        await context.send_initial_metadata(())
        recent_oom: dict[str, float] = {}
        async with contextlib.aclosing(self.runtime.events()) as events:
            async for event in events:
                if event.oneoff:
                    # A one-off command's exit is its session's business, not a crash of the
                    # release (the API would mark the Application crashed).
                    continue
                now = time.monotonic()
                oom_killed = event.kind == "oom"
                if event.kind == "oom":
                    recent_oom[event.container_id] = now
                elif event.kind == "die":
                    when = recent_oom.pop(event.container_id, None)
                    oom_killed = when is not None and now - when < OOM_MEMORY_SECONDS
                    if not oom_killed:
                        with contextlib.suppress(Exception):
                            info = await self.runtime.inspect(event.container_id)
                            oom_killed = bool(info and info.oom_killed)
                for cid, when in list(recent_oom.items()):
                    if now - when > OOM_MEMORY_SECONDS:
                        del recent_oom[cid]
                yield convert.runtime_event(event, oom_killed)

    def _stats_sampler(self) -> ContainerSampler | SwarmSampler | None:
        s = self.settings
        manager = getattr(self.runtime, "manager", None)
        if s.runtime == "swarm" and manager is not None:
            engines = {s.swarm_docker_url or "manager": manager}
            for url in s.swarm_node_engine_urls:
                engines.setdefault(url, aiodocker.Docker(url=url))
            return SwarmSampler(engines, s.instance)
        docker = getattr(self.runtime, "docker", None)
        return ContainerSampler(docker, s.instance) if docker is not None else None

    @_unary
    async def SampleStats(
        self, request: pb.StatsRequest, context: ServicerContext
    ) -> pb.StatsSample:
        # Issue 18 (backend/metrics/containers.py). On a Swarm, the engines of the nodes
        # that run tasks (backend/metrics/swarm.py): the manager serves only its own.
        if self._sampler is None:
            self._sampler = self._stats_sampler()
        if self._sampler is None:
            return pb.StatsSample()
        samples = await self._sampler.sample()
        return pb.StatsSample(
            containers=[
                pb.ContainerStats(
                    project=s.project,
                    process=s.process,
                    cpu_cores=s.cpu_cores,
                    memory_bytes=s.memory_bytes,
                    memory_limit_bytes=s.memory_limit_bytes,
                    net_rx_bytes_per_second=s.net_rx_bytes_per_second,
                    net_tx_bytes_per_second=s.net_tx_bytes_per_second,
                    restarts=s.restarts,
                )
                for s in samples
            ]
        )
