"""The API's internal gRPC server (127.0.0.1, shared secret): services for platform processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from backend import deploy_output, repos, validation
from backend.db.models import Application, Client, Project
from backend.db.models import ApplicationStatus as S
from backend.errors import DISK_FULL_MESSAGE, NotFound, PaasError, is_disk_full
from backend.events import Event, EventKind, get_bus, project_topic
from backend.metrics.collector import MetricsServicer
from backend.rpc import platform_pb2 as pb
from backend.rpc import platform_pb2_grpc as pb_grpc
from backend.rpc import pomegranate_types as pt
from backend.rpc.auth import SharedSecretInterceptor
from backend.rpc.servicer import ServicerContext
from backend.services import activity, keys, oneoff, quotas
from backend.services.applications.buildlog import follow_build_log
from backend.services.applications.deployer import get_deployer
from backend.services.applications.status import is_finished
from backend.services.projects import get_owned, list_projects
from backend.settings import Settings, get_settings

log = logging.getLogger("paastech.internal")


class DeploymentsServicer(pb_grpc.DeploymentsServicer):
    async def Deploy(
        self, request_iterator: AsyncIterator[pb.DeployChunk], context: ServicerContext
    ) -> AsyncIterator[pb.DeployEvent]:
        settings = get_settings()
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("part") != "header":
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first message must be a header"
            )
        header = first.header
        try:
            client = await Client.get_or_none(id=header.client_id)
            if client is None:
                raise PaasError("unknown client")
            project = await get_owned(client, header.project)
            # Quotas (issue 11): refused before anything is queued; gitd shows the reason as
            # `remote:` lines and the push is rejected (git drops its quarantined objects).
            await quotas.check_repository(client.id, project.name)
            await quotas.check_build_minutes(client.id)
        except PaasError as exc:
            yield pb.DeployEvent(finished=pb.Finished(ok=False, reason=exc.message, code=exc.code))
            return

        try:
            source = await _spool(request_iterator, settings)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            yield _refused_disk_full(project.name, exc)
            return
        if source is None:
            yield pb.DeployEvent(
                finished=pb.Finished(
                    ok=False,
                    reason=f"source larger than {settings.max_source_bytes} bytes",
                    code="VALIDATION",
                )
            )
            return
        deployer = get_deployer()
        # This RPC's task: the push's Client and the SSH key it authenticated with.
        activity.set_actor(await activity.git_actor(client.id, header.key_fingerprint))
        async with get_bus().subscribe(project_topic(project.id)) as statuses:
            try:
                app = await deployer.deploy_source(
                    project,
                    source,
                    commit_sha=header.commit_sha or None,
                    cause=header.cause or "push",
                )
            except Exception as exc:
                # The release's row could not be written (the database's disk is full): the
                # push is refused with the reason, as when the source could not be spooled.
                if not is_disk_full(exc):
                    raise
                yield _refused_disk_full(project.name, exc)
                return
            async for event in _follow(app, statuses, skip_lines=0):
                yield event
        async for event in _outcome(app, project, settings):
            yield event

    async def Follow(
        self, request: pb.FollowRequest, context: ServicerContext
    ) -> AsyncIterator[pb.DeployEvent]:
        settings = get_settings()
        try:
            client = await Client.get_or_none(id=request.client_id)
            if client is None:
                raise PaasError("unknown client")
            project = await get_owned(client, request.project)
            app = await Application.get_or_none(project=project, number=request.application)
            if app is None:
                raise NotFound(f"release v{request.application} not found", field="application")
        except PaasError as exc:
            yield pb.DeployEvent(finished=pb.Finished(ok=False, reason=exc.message, code=exc.code))
            return
        async with get_bus().subscribe(project_topic(project.id)) as statuses:
            async for event in _follow(app, statuses, skip_lines=max(request.skip_lines, 0)):
                yield event
        async for event in _outcome(app, project, settings):
            yield event

    async def Run(
        self, request_iterator: AsyncIterator[pb.RunChunk], context: ServicerContext
    ) -> AsyncIterator[pb.RunEvent]:
        """A one-off command for gitd (issue 14): refusals as `refused` events (nothing started),
        then the command's stream translated from Pomegranate's."""
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "header":
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first message must be a header"
            )
        header = first.header

        async def inputs() -> AsyncIterator[pt.RunInput]:
            async for chunk in requests:
                part = chunk.WhichOneof("part")
                if part == "stdin":
                    yield pt.RunInput(stdin=chunk.stdin)
                elif part == "stdin_closed":
                    yield pt.RunInput(stdin_closed=True)
                elif part == "resize":
                    size = pt.TerminalSize(rows=chunk.resize.rows, cols=chunk.resize.cols)
                    yield pt.RunInput(resize=size)

        request = oneoff.RunRequest(
            project=header.project,
            command=list(header.command),
            tty=header.tty,
            rows=header.size.rows,
            cols=header.size.cols,
        )
        try:
            client = await Client.get_or_none(id=header.client_id)
            if client is None:
                raise NotFound(f"project {header.project!r} not found", field="project")
            events = oneoff.run(client, request, inputs())
            async with contextlib.aclosing(events):
                async for event in events:
                    yield _run_event(event)
        except PaasError as exc:
            yield pb.RunEvent(refused=pb.Refusal(message=exc.message))


def _run_event(event: pt.RunOutput) -> pb.RunEvent:
    if event.kind == "started":
        return pb.RunEvent(started=event.started)
    if event.kind == "stdout":
        return pb.RunEvent(stdout=event.data)
    if event.kind == "stderr":
        return pb.RunEvent(stderr=event.data)
    if event.kind == "exit":
        return pb.RunEvent(exit=pb.RunExit(code=event.exit_code, reason=event.reason))
    reason = event.reason or "the command ended without a result"
    return pb.RunEvent(refused=pb.Refusal(message=reason))


def _refused_disk_full(project: str, exc: BaseException) -> pb.DeployEvent:
    """The push's answer when the data dir's disk is full (nothing was queued)."""
    log.error("push to %s refused: %s", project, exc)
    return pb.DeployEvent(
        finished=pb.Finished(ok=False, reason=DISK_FULL_MESSAGE, code="UNAVAILABLE")
    )


async def _follow(
    app: Application, statuses: AsyncIterator[Event], skip_lines: int
) -> AsyncIterator[pb.DeployEvent]:
    """Log lines and status changes of ``app`` until it finishes (``statuses``: its project's
    topic, subscribed before the release could change)."""
    queue: asyncio.Queue[pb.DeployEvent | None] = asyncio.Queue()

    async def pump_logs() -> None:
        async for seq, line in follow_build_log(app):
            if seq <= skip_lines:
                continue
            if (url := deploy_output.deployed_url(line)) is not None:
                deployed = pb.Deployed(url=url)
                await queue.put(pb.DeployEvent(deployed=deployed))
            else:
                await queue.put(pb.DeployEvent(log=line))
        await queue.put(None)

    async def pump_statuses() -> None:
        # The final status is sent last, with the outcome, after every log line.
        async for event in statuses:
            p = event.payload
            if (
                event.kind == EventKind.APPLICATION_STATUS
                and p["number"] == app.number
                and not is_finished(p["status"])
            ):
                change = pb.StatusChange(application=app.number, status=p["status"])
                await queue.put(pb.DeployEvent(status=change))

    # Its number first: a caller that loses the stream can Follow it (gitd does).
    yield pb.DeployEvent(status=pb.StatusChange(application=app.number, status=app.status.value))
    tasks = [asyncio.create_task(pump_logs()), asyncio.create_task(pump_statuses())]
    try:
        while (item := await queue.get()) is not None:
            yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _outcome(
    app: Application, project: Project, settings: Settings
) -> AsyncIterator[pb.DeployEvent]:
    await app.refresh_from_db()
    ok = app.status == S.RUNNING
    url = settings.app_url(settings.project_hostname(project.name))
    yield pb.DeployEvent(status=pb.StatusChange(application=app.number, status=app.status.value))
    yield pb.DeployEvent(
        finished=pb.Finished(
            ok=ok,
            application=app.number,
            url=url if ok else "",
            reason="" if ok else (app.failure_reason or app.status.value),
        )
    )


class GitAccessServicer(pb_grpc.GitAccessServicer):
    """Key and repository checks for gitd. Never says whether someone else's project exists."""

    async def AuthorizeKey(self, request: pb.KeyRequest, context: ServicerContext) -> pb.KeyReply:
        fingerprint = request.fingerprint
        if not fingerprint.startswith("SHA256:") or len(fingerprint) > 100:
            return pb.KeyReply(found=False)
        client = await keys.client_for_fingerprint(fingerprint)
        if client is None:
            return pb.KeyReply(found=False)
        return pb.KeyReply(found=True, client_id=client.id, username=client.username)

    async def AuthorizeRepo(
        self, request: pb.RepoRequest, context: ServicerContext
    ) -> pb.RepoReply:
        try:
            name = validation.project_name(request.project, field="project")
            client = await Client.get_or_none(id=request.client_id)
            if client is None:
                raise NotFound(f"project {name!r} not found", field="project")
            project = await get_owned(client, name)
            if not repos.exists(name):
                log.warning("project %s has no repository on disk", name)
                raise NotFound(f"project {name!r} not found", field="project")
        except PaasError as exc:
            return pb.RepoReply(ok=False, message=exc.message)
        return pb.RepoReply(
            ok=True,
            repo_path=str(repos.repo_path(name)),
            deploy_branch=project.deploy_branch,
        )

    async def Whoami(self, request: pb.ClientRef, context: ServicerContext) -> pb.WhoamiReply:
        client = await Client.get_or_none(id=request.client_id)
        if client is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "client not found")
        projects = await list_projects(client)
        return pb.WhoamiReply(username=client.username, projects=[p.name for p in projects])


async def _spool(chunks: AsyncIterator[pb.DeployChunk], settings: Settings) -> Path | None:
    """Write the tar stream to a temp file; None when it is over the size limit.

    Local writes of chunk-sized buffers: cheap enough for the event loop.
    """
    tmp_dir = settings.data_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="source-", suffix=".tar", dir=tmp_dir)
    path = Path(name)
    size = 0
    try:
        with open(fd, "wb") as fh:  # noqa: ASYNC230
            async for chunk in chunks:
                size += len(chunk.data)
                if size > settings.max_source_bytes:
                    path.unlink(missing_ok=True)  # noqa: ASYNC240
                    return None
                fh.write(chunk.data)
    except BaseException:
        path.unlink(missing_ok=True)  # noqa: ASYNC240
        raise
    return path


async def start_internal_server(settings: Settings) -> grpc.aio.Server:
    server = grpc.aio.server(interceptors=[SharedSecretInterceptor()])
    pb_grpc.add_DeploymentsServicer_to_server(DeploymentsServicer(), server)
    pb_grpc.add_GitAccessServicer_to_server(GitAccessServicer(), server)
    pb_grpc.add_MetricsServicer_to_server(MetricsServicer(), server)  # issue 18
    server.add_insecure_port(f"{settings.host}:{settings.api_grpc_port}")
    await server.start()
    return server
