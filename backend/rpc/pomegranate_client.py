"""The API's client of Pomegranate: typed calls over the stubs, RPC errors made domain errors.

The gRPC edge: methods take and return the dataclasses of pomegranate_types.py; protobuf
messages are built and read only here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc

from backend.errors import Conflict, NotFound, ProcessUnhealthy, Unavailable, ValidationFailed
from backend.rpc import pomegranate_pb2 as pb
from backend.rpc import pomegranate_pb2_grpc as pb_grpc
from backend.rpc import pomegranate_types as t
from backend.rpc.auth import call_metadata
from backend.settings import Settings, get_settings

CHUNK = 256 * 1024
LogSink = Callable[[str], Awaitable[None]]
Req = TypeVar("Req")
Reply = TypeVar("Reply")


class DeployFailed(Exception):
    """A build or release failed; the reason is for the user, last_lines are the app's output."""

    def __init__(self, reason: str, last_lines: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.last_lines = list(last_lines or [])


@dataclass
class BuildOutput:
    image: str
    stack: str
    processes: dict[str, str]
    exposed_port: int | None
    image_bytes: int = 0


@dataclass
class ReleaseOutput:
    containers: list[t.Container]
    stopped_applications: list[int] = field(default_factory=list)


def _unavailable(exc: grpc.aio.AioRpcError) -> Unavailable:
    return Unavailable(f"the deployment manager is not reachable ({exc.code().name.lower()})")


class PomegranateClient:
    def __init__(self, settings: Settings | None = None, target: str | None = None) -> None:
        s = settings or get_settings()
        self.target = target or f"{s.host}:{s.pomegranate_port}"
        self._channel: grpc.aio.Channel | None = None

    @property
    def stub(self) -> pb_grpc.PomegranateAsyncStub:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.target,
                options=[
                    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                    # Pomegranate is on this host or the next: after it restarts, reconnect
                    # within a second, not after gRPC's default backoff (up to two minutes).
                    ("grpc.initial_reconnect_backoff_ms", 200),
                    ("grpc.min_reconnect_backoff_ms", 200),
                    ("grpc.max_reconnect_backoff_ms", 1000),
                ],
            )
        return pb_grpc.PomegranateStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def build(
        self, project: str, application: int, source: Path, on_log: LogSink
    ) -> BuildOutput:
        async def chunks() -> AsyncIterator[pb.BuildChunk]:
            yield pb.BuildChunk(header=pb.BuildHeader(project=project, application=application))
            with source.open("rb") as fh:
                while data := fh.read(CHUNK):
                    yield pb.BuildChunk(data=data)

        try:
            async for event in self.stub.Build(chunks(), metadata=call_metadata()):
                kind = event.WhichOneof("event")
                if kind == "log":
                    await on_log(event.log)
                elif kind == "failure":
                    raise DeployFailed(event.failure.reason, list(event.failure.last_lines))
                elif kind == "result":
                    r = event.result
                    return BuildOutput(
                        r.image, r.stack, dict(r.processes), r.exposed_port or None, r.image_bytes
                    )
        except grpc.aio.AioRpcError as exc:
            raise _rpc_failure("build", exc) from exc
        raise DeployFailed("the build ended without a result")

    async def release(self, spec: t.ReleaseSpec, on_log: LogSink) -> ReleaseOutput:
        try:
            async for event in self.stub.Release(_release_spec(spec), metadata=call_metadata()):
                kind = event.WhichOneof("event")
                if kind == "log":
                    await on_log(event.log)
                elif kind == "failure":
                    raise DeployFailed(event.failure.reason, list(event.failure.last_lines))
                elif kind == "done":
                    return ReleaseOutput(
                        [_container(c) for c in event.done.containers],
                        list(event.done.stopped_applications),
                    )
        except grpc.aio.AioRpcError as exc:
            raise _rpc_failure("release", exc) from exc
        raise DeployFailed("the release ended without a result")

    async def _unary(
        self, method: grpc.aio.UnaryUnaryMultiCallable[Req, Reply], request: Req
    ) -> Reply:
        try:
            return await method(request, metadata=call_metadata(), timeout=120)
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(exc) from exc

    async def stop_project(self, project: str) -> None:
        await self._unary(self.stub.StopProject, pb.ProjectRef(project=project))

    async def remove_project(self, project: str) -> None:
        await self._unary(self.stub.RemoveProject, pb.ProjectRef(project=project))

    async def list_volumes(self, projects: list[str], *, sizes: bool = False) -> list[t.VolumeInfo]:
        """The projects' Docker volumes; ``sizes``: measured (slow: the engine walks them all)."""
        reply = await self._unary(
            self.stub.ListVolumes, pb.VolumesRequest(projects=projects, sizes=sizes)
        )
        return [
            t.VolumeInfo(v.project, v.name, v.docker_name, v.size_bytes, v.created_at)
            for v in reply.volumes
        ]

    async def remove_volume(self, project: str, docker_name: str) -> bool:
        """Remove one of the project's Docker volumes; False while a container still uses it."""
        try:
            await self.stub.RemoveVolume(
                pb.VolumeRef(project=project, docker_name=docker_name),
                metadata=call_metadata(),
                timeout=120,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return False
            raise _unavailable(exc) from exc
        return True

    async def list_processes(self, project: str) -> list[t.Container]:
        reply = await self._unary(self.stub.ListProcesses, pb.ProjectRef(project=project))
        return [_container(c) for c in reply.containers]

    async def sample_stats(self) -> list[t.ContainerStats]:
        """Issue 18: one stats reading of every running app container."""
        reply = await self._unary(self.stub.SampleStats, pb.StatsRequest())
        return [_container_stats(c) for c in reply.containers]

    async def restart_processes(
        self, project: str, application: int, process: str, replica: int, health_timeout: float
    ) -> list[t.Container]:
        """Restart the process's containers (replica 0: all) of that release in place."""
        request = pb.RestartRequest(
            project=project,
            application=application,
            process=process,
            replica=replica,
            health_timeout=health_timeout,
        )
        try:
            # One replica after the other, each up to its health timeout (+ its stop grace).
            reply = await self.stub.RestartProcesses(request, metadata=call_metadata())
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details() or ""
            if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
                raise ValidationFailed(details, field="processType") from exc
            if code == grpc.StatusCode.ABORTED:
                raise ProcessUnhealthy(details, field="processType") from exc
            raise _unavailable(exc) from exc
        return [_container(c) for c in reply.containers]

    async def reconcile(self, desired: list[t.DesiredProject]) -> t.ReconcileReport:
        request = pb.DesiredState(
            projects=[
                pb.DesiredProject(
                    project=d.project,
                    in_flight=list(d.in_flight),
                    live=_release_spec(d.live) if d.live is not None else None,
                )
                for d in desired
            ]
        )
        reply = await self._unary(self.stub.Reconcile, request)
        return t.ReconcileReport(list(reply.started), list(reply.removed))

    async def prune_images(self, project: str, keep: list[str]) -> list[str]:
        reply = await self._unary(
            self.stub.PruneImages, pb.PruneRequest(project=project, keep=keep)
        )
        return list(reply.removed)

    async def runtime_logs(self, project: str, tail: int, follow: bool) -> AsyncIterator[t.LogLine]:
        call = self.stub.RuntimeLogs(
            pb.LogsRequest(project=project, tail=tail, follow=follow), metadata=call_metadata()
        )
        try:
            async for line in call:
                yield t.LogLine(line.process, line.replica, line.application, line.line)
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(exc) from exc
        finally:
            call.cancel()

    async def run(
        self, start: t.RunStart, inputs: AsyncIterator[t.RunInput]
    ) -> AsyncGenerator[t.RunOutput]:
        """A one-off command (issue 14): ``start``, then whatever ``inputs`` yields (stdin,
        stdin_closed, resize) goes up; the command's events come back. Closing this iterator
        cancels the call, and Pomegranate removes the container."""

        async def requests() -> AsyncIterator[pb.RunInput]:
            yield pb.RunInput(start=_run_start(start))
            async for message in inputs:
                yield _run_input(message)

        call = self.stub.Run(requests(), metadata=call_metadata())
        try:
            async for event in call:
                yield _run_output(event)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise ValidationFailed(exc.details() or "invalid command", field="command") from exc
            raise _unavailable(exc) from exc
        finally:
            call.cancel()

    # ---------------------------------------------------------------------- add-ons (issue 15)

    async def _addon_call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Reply],
        request: Req,
        deadline: float = 180,
    ) -> Reply:
        try:
            return await method(request, metadata=call_metadata(), timeout=deadline)
        except grpc.aio.AioRpcError as exc:
            raise _addon_failure(exc) from exc

    async def ensure_addon(self, spec: t.AddonSpec) -> t.AddonState:
        request = pb.AddonSpec(
            name=spec.name,
            kind=spec.kind,
            image=spec.image,
            password=spec.password,
            memory_mb=spec.memory_mb,
            projects=list(spec.projects),
            alias=spec.alias,
        )
        return _addon_state(await self._addon_call(self.stub.EnsureAddon, request))

    async def remove_addon(self, name: str, kind: str) -> None:
        await self._addon_call(self.stub.RemoveAddon, pb.AddonRef(name=name, kind=kind))

    async def addon_status(self, name: str, kind: str) -> t.AddonState:
        reply = await self._addon_call(
            self.stub.AddonStatus, pb.AddonRef(name=name, kind=kind), deadline=30
        )
        return _addon_state(reply)

    async def addon_logs(
        self, name: str, kind: str, tail: int, follow: bool
    ) -> AsyncGenerator[t.LogLine]:
        request = pb.AddonLogsRequest(
            ref=pb.AddonRef(name=name, kind=kind), tail=tail, follow=follow
        )
        call = self.stub.AddonLogs(request, metadata=call_metadata())
        try:
            async for line in call:
                yield t.LogLine(line.process, line.replica, line.application, line.line)
        except grpc.aio.AioRpcError as exc:
            raise _addon_failure(exc) from exc
        finally:
            call.cancel()

    async def addon_volume_sizes(self, names: list[str]) -> dict[str, int]:
        reply = await self._addon_call(
            self.stub.AddonVolumeSizes, pb.AddonVolumesRequest(names=names), deadline=60
        )
        return {v.name: v.size_bytes for v in reply.volumes}

    async def backup_addon(self, name: str, kind: str) -> AsyncIterator[bytes]:
        call = self.stub.BackupAddon(pb.AddonRef(name=name, kind=kind), metadata=call_metadata())
        try:
            async for chunk in call:
                yield chunk.data
        except grpc.aio.AioRpcError as exc:
            raise _addon_failure(exc) from exc
        finally:
            call.cancel()

    async def restore_addon(self, name: str, kind: str, source: Path) -> None:
        async def chunks() -> AsyncIterator[pb.RestoreChunk]:
            yield pb.RestoreChunk(ref=pb.AddonRef(name=name, kind=kind))
            with source.open("rb") as fh:
                while data := fh.read(CHUNK):
                    yield pb.RestoreChunk(data=data)

        try:
            await self.stub.RestoreAddon(chunks(), metadata=call_metadata(), timeout=1800)
        except grpc.aio.AioRpcError as exc:
            raise _addon_failure(exc) from exc

    # ---------------------------------------------------------------------- nodes (issue 16)

    async def _node_call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Reply],
        request: Req,
        deadline: float = 60,
    ) -> Reply:
        try:
            return await method(request, metadata=call_metadata(), timeout=deadline)
        except grpc.aio.AioRpcError as exc:
            raise _node_failure(exc, refers_to_node=isinstance(request, pb.NodeRef)) from None

    async def list_nodes(self) -> list[t.Node]:
        reply = await self._node_call(self.stub.ListNodes, pb.Empty())
        return [_node(n) for n in reply.nodes]

    async def node_join_command(self) -> str:
        reply = await self._node_call(self.stub.NodeJoinCommand, pb.Empty())
        return str(reply.command)

    async def drain_node(self, ref: str, deadline: float) -> t.Node:
        return _node(await self._node_call(self.stub.DrainNode, pb.NodeRef(node=ref), deadline))

    async def activate_node(self, ref: str) -> t.Node:
        return _node(await self._node_call(self.stub.ActivateNode, pb.NodeRef(node=ref)))

    async def remove_node(self, ref: str) -> None:
        await self._node_call(self.stub.RemoveNode, pb.NodeRef(node=ref))

    def watch(self) -> WatchStream:
        """Pomegranate's runtime events; see WatchStream."""
        return WatchStream(self.stub.Watch(pb.WatchRequest(), metadata=call_metadata()))


class WatchStream:
    """One Watch call: ``connected()`` returns once Pomegranate answers, then iterating yields
    its runtime events; a lost connection raises Unavailable. ``cancel()`` ends the call."""

    def __init__(self, call: grpc.aio.UnaryStreamCall[pb.WatchRequest, pb.RuntimeEvent]) -> None:
        self._call = call

    async def connected(self) -> None:
        try:
            await self._call.wait_for_connection()
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(exc) from exc

    async def __aiter__(self) -> AsyncIterator[t.RuntimeEvent]:
        try:
            async for e in self._call:
                yield t.RuntimeEvent(
                    e.kind,
                    e.project,
                    e.application,
                    e.process,
                    e.replica,
                    e.exit_code,
                    e.oom_killed,
                )
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(exc) from exc

    def cancel(self) -> None:
        self._call.cancel()


# ------------------------------------------------------------- dataclasses <-> protobuf


def _release_spec(spec: t.ReleaseSpec) -> pb.ReleaseSpec:
    return pb.ReleaseSpec(
        project=spec.project,
        application=spec.application,
        image=spec.image,
        processes=[
            pb.Process(type=p.type, command=p.command, replicas=p.replicas) for p in spec.processes
        ],
        env=spec.env,
        port=spec.port,
        hostnames=list(spec.hostnames),
        memory_mb=spec.memory_mb,
        cpu=spec.cpu,
        health_path=spec.health_path,
        health_timeout=spec.health_timeout,
        hsts_seconds=spec.hsts_seconds,
        volumes=[
            pb.VolumeMount(name=v.name, key=v.key, path=v.path, processes=list(v.processes))
            for v in spec.volumes
        ],
    )


def _container(c: pb.Container) -> t.Container:
    return t.Container(
        id=c.id,
        name=c.name,
        project=c.project,
        application=c.application,
        process=c.process,
        replica=c.replica,
        state=c.state,
        running=c.running,
        host_port=c.host_port,
        exit_code=c.exit_code,
        oom_killed=c.oom_killed,
        started_at=c.started_at,
        restart_count=c.restart_count,
        one_off=c.one_off,
    )


def _container_stats(c: pb.ContainerStats) -> t.ContainerStats:
    return t.ContainerStats(
        project=c.project,
        process=c.process,
        cpu_cores=c.cpu_cores,
        memory_bytes=c.memory_bytes,
        memory_limit_bytes=c.memory_limit_bytes,
        net_rx_bytes_per_second=c.net_rx_bytes_per_second,
        net_tx_bytes_per_second=c.net_tx_bytes_per_second,
        restarts=c.restarts,
    )


def _node(n: pb.Node) -> t.Node:
    return t.Node(
        id=n.id,
        hostname=n.hostname,
        role=n.role,
        state=n.state,
        availability=n.availability,
        address=n.address,
        leader=n.leader,
        tasks=n.tasks,
        nano_cpus=n.nano_cpus,
        memory_bytes=n.memory_bytes,
        engine_version=n.engine_version,
    )


def _addon_state(s: pb.AddonState) -> t.AddonState:
    return t.AddonState(
        state=s.state,
        running=s.running,
        health=s.health,
        projects=tuple(s.projects),
        started_at=s.started_at,
        restart_count=s.restart_count,
    )


def _terminal_size(size: t.TerminalSize | None) -> pb.TerminalSize | None:
    return pb.TerminalSize(rows=size.rows, cols=size.cols) if size is not None else None


def _run_start(start: t.RunStart) -> pb.RunStart:
    return pb.RunStart(
        spec=_release_spec(start.spec),
        command=start.command,
        tty=start.tty,
        detach=start.detach,
        timeout_seconds=start.timeout_seconds,
        size=_terminal_size(start.size),
        addon=start.addon,
    )


def _run_input(message: t.RunInput) -> pb.RunInput:
    if message.stdin is not None:
        return pb.RunInput(stdin=message.stdin)
    if message.resize is not None:
        return pb.RunInput(resize=_terminal_size(message.resize))
    return pb.RunInput(stdin_closed=message.stdin_closed)


def _run_output(event: pb.RunOutput) -> t.RunOutput:
    kind = event.WhichOneof("event") or "failure"
    if kind == "started":
        return t.RunOutput(kind, started=event.started)
    if kind in ("stdout", "stderr"):
        return t.RunOutput(kind, data=getattr(event, kind))
    if kind == "exit":
        return t.RunOutput(kind, exit_code=event.exit.code, reason=event.exit.reason)
    reason = event.failure.reason or "the command ended without a result"
    return t.RunOutput("failure", reason=reason)


def _addon_failure(exc: grpc.aio.AioRpcError) -> Unavailable:
    """An add-on server the engine could not run, back up or restore: the reason, as given."""
    if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
        return Unavailable(exc.details() or "the add-on server failed")
    return _unavailable(exc)


def _node_failure(exc: grpc.aio.AioRpcError, *, refers_to_node: bool) -> Exception:
    """What a node rpc's status means for the API: field ``node`` on what concerns the node;
    a node that refuses (FAILED_PRECONDITION on a NodeRef) is a CONFLICT."""
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details, field="node")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ValidationFailed(details, field="node")
    if code == grpc.StatusCode.FAILED_PRECONDITION and refers_to_node:
        return Conflict(details, field="node")
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INTERNAL):
        return Unavailable(details)
    return Unavailable(f"the deployment manager is not reachable ({code.name.lower()})")


def _rpc_failure(what: str, exc: grpc.aio.AioRpcError) -> DeployFailed:
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return DeployFailed(f"{what} interrupted: the deployment manager is not reachable")
    return DeployFailed(f"{what} failed: {exc.details() or exc.code().name}")
