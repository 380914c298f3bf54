"""Releases: the API's orchestration of Pomegranate.

Every push, config change, scale, rollback or restart becomes a new Application (release) that
goes through one queue per project: queued -> building (source only) -> deploying -> running, or
failed. A newer queued release replaces an older queued one. Status changes and log lines are
persisted first, then published on the event bus, so a subscriber that reconnects loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from tortoise.transactions import in_transaction

from backend import labels as L
from backend import security, validation
from backend.db.models import Application, BuildLog, Project, StatusChange, Volume
from backend.db.models import ApplicationStatus as S
from backend.errors import (
    DISK_FULL_MESSAGE,
    NotFound,
    Unavailable,
    ValidationFailed,
    is_disk_full,
)
from backend.events import EventKind, build_log_topic, get_bus, project_topic
from backend.rpc import pomegranate_pb2 as pb
from backend.rpc.pomegranate_client import DeployFailed, PomegranateClient
from backend.services import activity, config, quotas, serving, volumes
from backend.services.applications.status import (
    FINISHED,
    IN_PROGRESS,
    LIVE,
    RELEASED,
    is_finished,
    set_status,
)
from backend.services.build_slots import FairSlots
from backend.services.projects import live_application
from backend.settings import Settings, get_settings

log = logging.getLogger("paastech.deployments")

MAX_REPLICAS = 20
MEMORY_RANGE_MB = (32, 16384)
CPU_RANGE = (0.05, 16.0)
LAST_LINES_IN_REASON = 10
# How long a release waits for Pomegranate to (re)connect before it fails: long enough for the
# supervisor to restart a crashed Pomegranate (issue 20).
POMEGRANATE_WAIT_SECONDS = 30.0


@dataclass
class Job:
    application_id: int
    source: Path | None = None  # build this tar; None: reuse an image
    image_from: int | None = None  # application id whose image is reused; None: the live one

    def to_json(self) -> str:
        return json.dumps(
            {"source": str(self.source) if self.source else None, "image_from": self.image_from}
        )

    @classmethod
    def from_json(cls, application_id: int, text: str) -> Job:
        data = json.loads(text)
        source = Path(data["source"]) if data.get("source") else None
        return cls(application_id, source=source, image_from=data.get("image_from"))


# ---------------------------------------------------------------------------------------------
# Log persistence (persist, then publish; statuses: services/applications/status.py)


class BuildLogWriter:
    """Appends numbered lines to an Application's log and publishes each."""

    def __init__(self, app: Application, start_seq: int, build_lines_limit: float) -> None:
        self.app = app
        self.seq = start_seq
        self.max = get_settings().build_log_line_max
        # The Client's build_log_lines quota: the build's own output beyond it is dropped (each
        # line is a database row); the platform's lines (status, outcome) are always written.
        self.build_lines_limit = build_lines_limit
        self.build_lines = 0

    @classmethod
    async def open(cls, app: Application, owner_id: int) -> BuildLogWriter:
        limit = await quotas.limit_of(owner_id, quotas.BUILD_LOG_LINES)
        return cls(app, await BuildLog.filter(application=app).count(), limit)

    async def write_build_output(self, line: str) -> None:
        self.build_lines += 1
        if self.build_lines <= self.build_lines_limit:
            await self.write(line)
        elif self.build_lines == int(self.build_lines_limit) + 1:
            await self.write(
                f" !     quota {quotas.BUILD_LOG_LINES} reached: limit "
                f"{self.build_lines_limit:g} lines per build; the rest of the build output is "
                "dropped (the build goes on)"
            )

    async def write(self, line: str) -> None:
        line = line.rstrip("\n")[: self.max]
        self.seq += 1
        await BuildLog.create(application=self.app, seq=self.seq, line=line)
        await get_bus().publish(
            build_log_topic(self.app.id), EventKind.BUILD_LOG, {"seq": self.seq, "line": line}
        )


async def follow_build_log(app: Application) -> AsyncIterator[tuple[int, str]]:
    """Every line logged so far, then new lines until the release finishes."""
    async with get_bus().subscribe(build_log_topic(app.id)) as live:
        last = 0
        for seq, line in (
            await BuildLog.filter(application=app).order_by("seq").values_list("seq", "line")
        ):
            last = seq
            yield seq, line
        await app.refresh_from_db(fields=["status"])
        if app.status in FINISHED:
            return
        async with get_bus().subscribe(project_topic(app.project_id)) as statuses:  # type: ignore[attr-defined]
            merged = _merge(live, statuses)
            async for source, event in merged:
                if source == "log" and event.payload["seq"] > last:
                    last = event.payload["seq"]
                    yield last, event.payload["line"]
                elif (
                    source == "status"
                    and event.kind == EventKind.APPLICATION_STATUS
                    and event.payload["number"] == app.number
                    and is_finished(event.payload["status"])
                ):
                    # Lines are published before the final status: drain what is queued.
                    for seq, line in (
                        await BuildLog.filter(application=app, seq__gt=last)
                        .order_by("seq")
                        .values_list("seq", "line")
                    ):
                        yield seq, line
                    return


async def _merge(logs: AsyncIterator, statuses: AsyncIterator) -> AsyncIterator[tuple[str, object]]:
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(name: str, it: AsyncIterator) -> None:
        async for item in it:
            await queue.put((name, item))

    tasks = [asyncio.create_task(pump("log", logs)), asyncio.create_task(pump("status", statuses))]
    try:
        while True:
            yield await queue.get()
    finally:
        for t in tasks:
            t.cancel()


# ---------------------------------------------------------------------------------------------
# The deployer: one per API process


class Deployer:
    def __init__(self, client: PomegranateClient, settings: Settings | None = None) -> None:
        self.client = client
        self.settings = settings or get_settings()
        self._pending: dict[int, Job] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()
        # Builds of all projects share these slots round-robin across Clients (issue 11).
        self.build_slots = FairSlots(self.settings.max_concurrent_builds)
        # Projects whose processes are being restarted on purpose (restart web.2): their
        # containers' exits are not crashes. A Counter: two restarts of one project may overlap.
        self._restarting: Counter[int] = Counter()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume the releases a previous API process left half-done, then watch Pomegranate."""
        await self._resume_interrupted()
        self._background = [
            asyncio.create_task(self._watch_forever(), name="pomegranate-watch"),
            asyncio.create_task(self._reconcile_periodically(), name="reconcile"),
        ]

    async def stop(self) -> None:
        for task in [*self._background, *self._workers.values()]:
            task.cancel()
        for task in [*self._background, *self._workers.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.client.close()

    async def _resume_interrupted(self) -> None:
        """Every release still queued, building or deploying when the API stopped (crash, kill -9,
        restart) runs again from its start: each job is kept in DATA_DIR/queue until it finishes.
        Per project only the newest runs (as when a newer release replaces a queued one); a
        release whose job or source is gone fails with the reason. Pomegranate makes a repeated
        release idempotent (one that had switched already is recognised as live)."""
        newest: dict[int, int] = {}
        interrupted = (
            await Application.filter(status__in=IN_PROGRESS)
            .order_by("project_id", "-number")
            .prefetch_related("project")
        )
        ids = {app.id for app in interrupted}
        queue_dir = self.settings.data_dir / "queue"
        for path in queue_dir.glob("*.json") if queue_dir.is_dir() else []:
            # Jobs of releases that finished or were deleted while the file stayed behind.
            if not path.stem.isdigit() or int(path.stem) not in ids:
                job = self._load_job(int(path.stem)) if path.stem.isdigit() else None
                if job is not None:
                    self._drop_job(job)
                path.unlink(missing_ok=True)
        kept = {str(j.source) for a in interrupted if (j := self._load_job(a.id)) and j.source}
        tmp_dir = self.settings.data_dir / "tmp"
        for path in tmp_dir.glob("source-*.tar") if tmp_dir.is_dir() else []:
            if str(path) not in kept:  # spooled by a push the crash cut short
                path.unlink(missing_ok=True)
        for app in interrupted:
            job = self._load_job(app.id)
            if app.project_id in newest:
                reason = f"interrupted by an API restart; replaced by v{newest[app.project_id]}"
            elif job is None:
                reason = "interrupted by an API restart and could not be resumed: run it again"
            elif job.source is not None and not job.source.exists():
                reason = "interrupted by an API restart; its source is gone: push again"
            else:
                newest[app.project_id] = app.number
                log.info("resuming v%d of %s (%s)", app.number, app.project.name, app.status.value)
                try:
                    if app.status != S.QUEUED:
                        await set_status(app, S.QUEUED, "resumed after an API restart")
                    out = await BuildLogWriter.open(app, app.project.owner_id)
                    await out.write("-----> The platform restarted: this release resumes")
                    await self._enqueue(app.project, job)
                    continue
                except Exception as exc:
                    # One release that cannot resume fails alone: the API still starts.
                    log.exception("v%d of %s could not resume", app.number, app.project.name)
                    reason = f"interrupted by an API restart and could not be resumed: {exc}"
            if job is not None:
                self._drop_job(job)
            await set_status(app, S.FAILED, reason)

    def _job_path(self, application_id: int) -> Path:
        return self.settings.data_dir / "queue" / f"{application_id}.json"

    def _save_job(self, job: Job) -> None:
        path = self._job_path(job.application_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(job.to_json())
        tmp.replace(path)  # atomic: a crash leaves the old file or the new one, never half

    def _load_job(self, application_id: int) -> Job | None:
        try:
            return Job.from_json(application_id, self._job_path(application_id).read_text())
        except (OSError, ValueError, KeyError):
            return None

    def _drop_job(self, job: Job) -> None:
        self._job_path(job.application_id).unlink(missing_ok=True)
        if job.source:
            job.source.unlink(missing_ok=True)

    @property
    def sources_dir(self) -> Path:
        path = self.settings.data_dir / "sources"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def source_path(self, project: Project) -> Path:
        return self.sources_dir / f"{project.name}.tar"

    # -- entry points (callers have checked ownership) ----------------------------------------

    async def deploy_source(
        self, project: Project, source: Path, *, commit_sha: str | None, cause: str
    ) -> Application:
        """Queue a build of ``source`` (a tar file this call takes ownership of)."""
        try:
            await quotas.check_build_minutes(project.owner_id)
            app = await self._new_application(project, cause, commit_sha=commit_sha)
        except BaseException:
            # Refused, or its row could not be written (a full disk): nothing keeps the source.
            await asyncio.to_thread(source.unlink, True)
            raise
        await self._enqueue_or_fail(app, project, Job(app.id, source=source))
        await activity.record(
            project.owner_id,
            "deploy",
            project=project,
            release=app.number,
            cause=cause,
            commit=commit_sha,
        )
        return app

    async def _enqueue_or_fail(self, app: Application, project: Project, job: Job) -> None:
        """Queue; when the job cannot be kept (a full disk), the release fails with the reason."""
        try:
            await self._enqueue(project, job)
        except OSError as exc:
            self._drop_job(job)  # frees what it can
            reason = DISK_FULL_MESSAGE if is_disk_full(exc) else f"could not queue: {exc}"
            await set_status(app, S.FAILED, reason)

    async def redeploy(self, project: Project) -> Application:
        current = self.source_path(project)
        if not current.exists():
            raise ValidationFailed("nothing to deploy yet: push your code first", field="project")
        copy = self.sources_dir / f".{project.name}.{datetime.now(UTC).timestamp()}.tar"
        await asyncio.to_thread(shutil.copyfile, current, copy)
        return await self.deploy_source(project, copy, commit_sha=None, cause="redeploy")

    async def release_config(self, project: Project, cause: str) -> Application | None:
        """A config change (env, domains, scale, resources): a new release of the live image.

        Nothing is released while nothing runs: the next deploy picks the change up.
        """
        if await live_application(project) is None:
            return None
        app = await self._new_application(project, cause)
        await self._enqueue(project, Job(app.id))
        return app

    async def rollback(self, project: Project, number: int | None) -> Application:
        target = await self._rollback_target(project, number)
        async with in_transaction():
            # As on Heroku, a rollback restores the config of that release too.
            await config.replace_env(project, _env_of(target))
        app = await self._new_application(
            project, f"rollback to v{target.number}", commit_sha=target.commit_sha
        )
        await self._enqueue(project, Job(app.id, image_from=target.id))
        await activity.record(
            project.owner_id, "rollback", project=project, release=app.number, to=target.number
        )
        return app

    async def restart(self, project: Project) -> Application:
        base = await live_application(project)
        in_progress = await Application.filter(project=project, status__in=IN_PROGRESS).exists()
        if base is None and not in_progress:
            raise ValidationFailed("nothing is running: deploy first", field="project")
        # The image is the one live when the restart runs: after a release already queued.
        app = await self._new_application(project, "restart")
        await self._enqueue(project, Job(app.id))
        await activity.record(project.owner_id, "restart", project=project, release=app.number)
        return app

    async def restart_processes(
        self, project: Project, process_type: str, replica: int | None
    ) -> list[pb.Container]:
        """Restart one process type (every replica) or one replica of the live release in place:
        no new release, a restart is not a config change (issue 19, `restart web.2`). Every bad
        input is refused before anything is touched."""
        from backend.pomegranate.procfile import validate_process_type

        try:
            validate_process_type(process_type)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="processType") from None
        if replica is not None and replica < 1:
            raise ValidationFailed("replicas are numbered from 1 (web.1)", field="replica")
        live = await live_application(project)
        if live is None:
            raise ValidationFailed("nothing is running: deploy first", field="project")
        if await Application.filter(project=project, status__in=IN_PROGRESS).exists():
            raise ValidationFailed(
                "a release is in progress: restart once it is live", field="project"
            )
        running = {t: n for t, n in sorted(live.replicas.items()) if n > 0}
        known = ", ".join(running) or "none"
        if process_type not in live.processes or process_type == L.RELEASE_PROCESS:
            raise ValidationFailed(
                f"no process type {process_type!r} in v{live.number} (it runs: {known})",
                field="processType",
            )
        count = running.get(process_type, 0)
        if count == 0:
            raise ValidationFailed(
                f"{process_type} has no running replica in v{live.number} "
                f"(scale {process_type}=1 first)",
                field="processType",
            )
        if replica is not None and replica > count:
            raise ValidationFailed(
                f"{process_type}.{replica} does not exist: {process_type} runs {count} "
                f"replica{'s' if count != 1 else ''} ({process_type}.1"
                + (f" to {process_type}.{count})" if count > 1 else ")"),
                field="replica",
            )
        self._restarting[project.id] += 1
        await activity.record(
            project.owner_id,
            "restart.processes",
            project=project,
            processType=process_type,
            replica=replica,
        )
        try:
            return await self.client.restart_processes(
                project.name,
                live.number,
                process_type,
                replica or 0,
                self.settings.health_check_timeout_seconds,
            )
        finally:
            self._restarting[project.id] -= 1
            if self._restarting[project.id] <= 0:
                del self._restarting[project.id]

    async def scale(self, project: Project, process_type: str, replicas: int) -> Application | None:
        from backend.pomegranate.procfile import validate_process_type

        try:
            validate_process_type(process_type)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="processType") from None
        if not 0 <= replicas <= MAX_REPLICAS:
            raise ValidationFailed(
                f"replicas must be between 0 and {MAX_REPLICAS}", field="replicas"
            )
        if process_type == L.RELEASE_PROCESS:
            raise ValidationFailed(
                "the release process runs once per release, before it goes live: it can't be "
                "scaled",
                field="processType",
            )
        base = await live_application(project)
        if base is not None and process_type not in base.processes:
            known = ", ".join(sorted(base.processes)) or "none"
            raise ValidationFailed(
                f"no process type {process_type!r} in the running release (it has: {known})",
                field="processType",
            )
        current = effective_replicas(project.replicas, {process_type: ""})[process_type]
        if replicas == current:
            return None  # already that many: no release, no restarted container (issue 19)
        project.replicas = {**project.replicas, process_type: replicas}
        await quotas.check_runtime(project.owner_id, project)
        await project.save(update_fields=["replicas"])
        await _settings_changed(project, f"scale {process_type}={replicas}")
        await activity.record(
            project.owner_id, "scale", project=project, processType=process_type, replicas=replicas
        )
        return await self.release_config(project, f"scale {process_type}={replicas}")

    async def update_settings(
        self,
        project: Project,
        *,
        port: int | None,
        health_check_path: str | None,
        deploy_branch: str | None,
        hsts: bool | None = None,
    ) -> Application | None:
        """Port, health check path, deploy branch, HSTS. A release follows unless only the
        branch changes (the others are in the containers' environment or labels)."""
        if port is None and health_check_path is None and deploy_branch is None and hsts is None:
            raise ValidationFailed("give port, healthCheckPath, deployBranch or hsts", field="port")
        if (
            (port is None or port == project.port)
            and (health_check_path is None or health_check_path == project.health_check_path)
            and (deploy_branch is None or deploy_branch == project.deploy_branch)
            and (hsts is None or hsts == project.hsts)
        ):
            return None  # nothing changes: no release (issue 19)
        changes = []
        if port is not None:
            project.port = validation.port(port)
            changes.append(f"port={port}")
        if health_check_path is not None:
            project.health_check_path = validation.health_check_path(health_check_path)
            changes.append(f"health check {health_check_path}")
        if deploy_branch is not None:
            project.deploy_branch = validation.branch(deploy_branch)
            changes.append(f"deploy branch {deploy_branch}")
        if hsts is not None:
            project.hsts = hsts
            changes.append(f"hsts {'on' if hsts else 'off'}")
        await project.save(update_fields=["port", "health_check_path", "deploy_branch", "hsts"])
        await _settings_changed(project, "settings: " + ", ".join(changes))
        await activity.record(project.owner_id, "settings", project=project, changes=changes)
        if port is None and health_check_path is None and hsts is None:
            return None
        return await self.release_config(project, "settings: " + ", ".join(changes))

    async def set_resources(
        self, project: Project, memory_mb: int | None, cpu: float | None
    ) -> Application | None:
        if memory_mb is None and cpu is None:
            raise ValidationFailed("give memoryMb, cpu or both", field="memoryMb")
        if memory_mb is not None and not MEMORY_RANGE_MB[0] <= memory_mb <= MEMORY_RANGE_MB[1]:
            lo, hi = MEMORY_RANGE_MB
            raise ValidationFailed(f"memoryMb must be between {lo} and {hi}", field="memoryMb")
        if cpu is not None and not CPU_RANGE[0] <= cpu <= CPU_RANGE[1]:
            raise ValidationFailed(
                f"cpu must be between {CPU_RANGE[0]} and {CPU_RANGE[1]}", field="cpu"
            )
        memory_now = project.memory_mb or self.settings.default_memory_mb
        cpu_now = project.cpu or self.settings.default_cpu
        if (memory_mb is None or memory_mb == memory_now) and (cpu is None or cpu == cpu_now):
            return None  # nothing changes: no release (issue 19)
        if memory_mb is not None:
            project.memory_mb = memory_mb
        if cpu is not None:
            project.cpu = cpu
        await quotas.check_runtime(project.owner_id, project)
        await project.save(update_fields=["memory_mb", "cpu"])
        parts = [f"memory={memory_mb}MB"] if memory_mb is not None else []
        parts += [f"cpu={cpu}"] if cpu is not None else []
        await _settings_changed(project, "resources " + " ".join(parts))
        await activity.record(
            project.owner_id, "resources", project=project, memoryMb=memory_mb, cpu=cpu
        )
        return await self.release_config(project, "resources " + " ".join(parts))

    async def stop_project(self, project: Project) -> Application:
        live = await live_application(project)
        if live is None:
            raise ValidationFailed("nothing is running", field="project")
        await self.client.stop_project(project.name)
        await set_status(live, S.STOPPED, "stopped by the owner")
        await activity.record(project.owner_id, "stop", project=project, release=live.number)
        return live

    async def start_project(self, project: Project) -> Application:
        if await live_application(project) is not None:
            raise ValidationFailed("already running", field="project")
        base = (
            await Application.filter(project=project, status__in=RELEASED, image__not_isnull=True)
            .order_by("-number")
            .first()
        )
        if base is None:
            raise ValidationFailed("nothing to start: deploy first", field="project")
        app = await self._new_application(project, "start", commit_sha=base.commit_sha)
        await self._enqueue(project, Job(app.id, image_from=base.id))
        await activity.record(project.owner_id, "start", project=project, release=app.number)
        return app

    async def remove_project(self, project: Project) -> None:
        pending = self._pending.pop(project.id, None)
        worker = self._workers.pop(project.id, None)
        if worker is not None:
            worker.cancel()
        if pending:
            self._drop_job(pending)
        self.source_path(project).unlink(missing_ok=True)
        try:
            await self.client.remove_project(project.name)
        except Unavailable:
            # The periodic reconcile removes the containers of deleted projects later.
            log.warning("could not remove containers of %s now; reconcile will", project.name)

    # -- the queue ----------------------------------------------------------------------------

    async def _new_application(
        self, project: Project, cause: str, *, commit_sha: str | None = None
    ) -> Application:
        async with in_transaction():
            last = await Application.filter(project=project).order_by("-number").first()
            app = await Application.create(
                project=project,
                number=(last.number if last else 0) + 1,
                cause=cause[:200],
                commit_sha=commit_sha,
                status=S.QUEUED,
            )
            await StatusChange.create(application=app, status=S.QUEUED, message=cause[:200])
        await get_bus().publish(
            project_topic(project.id),
            EventKind.APPLICATION_CREATED,
            {
                "project": project.name,
                "number": app.number,
                "status": S.QUEUED.value,
                "message": cause,
            },
        )
        return app

    async def _enqueue(self, project: Project, job: Job) -> None:
        self._save_job(job)
        replaced = self._pending.get(project.id)
        self._pending[project.id] = job
        if replaced is not None:
            old = await Application.get(id=replaced.application_id)
            new = await Application.get(id=job.application_id)
            await set_status(old, S.FAILED, f"replaced by v{new.number} before it started")
            self._drop_job(replaced)
        worker = self._workers.get(project.id)
        if worker is None or worker.done():
            self._workers[project.id] = asyncio.create_task(
                self._work(project.id), name=f"deploy-{project.name}"
            )

    async def _work(self, project_id: int) -> None:
        while (job := self._pending.pop(project_id, None)) is not None:
            try:
                # Pomegranate may be restarting (its supervisor brings it back in seconds).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.connected.wait(), POMEGRANATE_WAIT_SECONDS)
                await self._run(job)
            except asyncio.CancelledError:
                # The API is stopping: the job file stays, the next start resumes the release.
                raise
            except Unavailable as exc:
                app = await Application.get_or_none(id=job.application_id)
                if app is not None and app.status in IN_PROGRESS:
                    await set_status(app, S.FAILED, exc.message)
            except Exception:
                log.exception("release %s failed unexpectedly", job.application_id)
                app = await Application.get_or_none(id=job.application_id)
                if app is not None and app.status in IN_PROGRESS:
                    await set_status(app, S.FAILED, "internal error; it has been logged")
            self._drop_job(job)  # finished, one way or another (not on cancel: see above)
        # No await between the empty queue and this line: an enqueue cannot slip in between.
        self._workers.pop(project_id, None)

    async def _run(self, job: Job) -> None:
        app = await Application.get(id=job.application_id).prefetch_related("project")
        project: Project = app.project
        out = await BuildLogWriter.open(app, project.owner_id)
        try:
            if job.source is not None:
                if self.build_slots.busy():
                    await out.write(
                        f"-----> Waiting for a build slot ({self.build_slots.waiting} builds "
                        "waiting; slots go round-robin between clients)"
                    )
                async with self.build_slots.turn(project.owner_id):
                    await set_status(app, S.BUILDING)
                    await out.write(f"-----> Building {project.name} (v{app.number})")
                    built = await self.client.build(
                        project.name, app.number, job.source, out.write_build_output
                    )
                await quotas.check_image(project.owner_id, built.image_bytes)
                app.image, app.processes = built.image, built.processes
                app.image_digest = built.image.partition("@")[2] or None
                app.port = project.port or built.exposed_port or self.settings.default_port
                await asyncio.to_thread(shutil.copyfile, job.source, self.source_path(project))
                await out.write(f"-----> Built {built.stack} app into {built.image}")
            else:
                if job.image_from:
                    base = await Application.get(id=job.image_from)
                else:
                    base = await live_application(project)
                if base is None or not base.image:
                    raise DeployFailed("nothing to release: the live release is gone")
                app.image, app.processes = base.image, base.processes
                app.image_digest = base.image_digest
                app.commit_sha = app.commit_sha or base.commit_sha
                app.port = project.port or base.port or self.settings.default_port
            await self._snapshot_config(app, project)
            await set_status(app, S.DEPLOYING)
            await out.write(f"-----> Deploying v{app.number}")
            released = await self.client.release(self._spec(app, project), out.write)
            # Every line before the final status: followers stop reading at the status.
            url = self.settings.app_url(self.settings.project_hostname(project.name))
            await out.write(serving.deployed_line(app.number, url, app.replicas))
            await self._finish(app, project, released.stopped_applications)
        except DeployFailed as exc:
            # A build's output was streamed already; a failed start's container output was not.
            if app.status != S.BUILDING:
                for line in exc.last_lines[-LAST_LINES_IN_REASON:]:
                    await out.write(f"       {line}")
            await out.write(f" !     {exc.reason}")
            reason = exc.reason
            if exc.last_lines:
                reason += "\n" + "\n".join(exc.last_lines[-LAST_LINES_IN_REASON:])
            await set_status(app, S.FAILED, reason)

    async def _snapshot_config(self, app: Application, project: Project) -> None:
        env = await config.env_of(project)
        app.env_snapshot = security.encrypt(json.dumps(env))
        app.domains = await config.hostnames_of(project)
        app.replicas = effective_replicas(project.replicas, app.processes)
        app.memory_mb = project.memory_mb or self.settings.default_memory_mb
        app.cpu = project.cpu or self.settings.default_cpu
        # The project's volumes as they are now (issue 15): a rollback keeps today's volumes.
        app.volumes = volumes.snapshot(await volumes.of_project(project))
        await app.save()

    def release_spec(self, app: Application, project: Project) -> pb.ReleaseSpec:
        """What runs for ``app``: its image, env snapshot, processes and limits (also the base
        of a one-off command's container, issue 14)."""
        return self._spec(app, project)

    def _spec(self, app: Application, project: Project) -> pb.ReleaseSpec:
        return pb.ReleaseSpec(
            project=project.name,
            application=app.number,
            image=app.image or "",
            processes=[
                pb.Process(type=t, command=app.processes.get(t) or "", replicas=n)
                for t, n in sorted(app.replicas.items())
            ],
            env=_env_of(app),
            port=app.port or self.settings.default_port,
            # Only the default hostname goes into the labels: custom domains route through
            # backend/routing.py, so a domain change restarts nothing.
            hostnames=[config.default_hostname(project)],
            memory_mb=app.memory_mb or self.settings.default_memory_mb,
            cpu=app.cpu or self.settings.default_cpu,
            health_path=project.health_check_path,
            health_timeout=self.settings.health_check_timeout_seconds,
            hsts_seconds=self.settings.hsts_max_age_seconds if project.hsts else 0,
            volumes=[
                pb.VolumeMount(
                    name=v["name"], key=v["key"], path=v["mountPath"], processes=v["processTypes"]
                )
                for v in app.volumes or []
            ],
        )

    async def _finish(self, app: Application, project: Project, stopped: list[int]) -> None:
        previous = await Application.filter(
            project=project, status__in=(*LIVE, S.STOPPED), number__lt=app.number
        )
        for old in previous:
            await set_status(old, S.SUPERSEDED, f"replaced by v{app.number}")
        await set_status(app, S.RUNNING)
        keep = await self._images_to_keep(project)
        try:
            await self.client.prune_images(project.name, keep)
        except Unavailable:
            log.warning("image pruning of %s skipped: Pomegranate unreachable", project.name)
        await self.prune_volumes(project)

    async def volumes_changed(self, project: Project, cause: str) -> Application | None:
        """A volume added or removed (issue 15): a new release mounts the project's volumes as
        they are now. When nothing runs, a removed volume's data goes at once."""
        app = await self.release_config(project, cause)
        if app is None:
            await self.prune_volumes(project)
        return app

    async def prune_volumes(self, project: Project) -> list[str]:
        """Remove the project's Docker volumes that no Volume row names any more (removed by the
        owner), once no container uses them; the Docker names removed."""
        try:
            keep = set(await Volume.filter(project=project).values_list("key", flat=True))
            removed = []
            for found in await self.client.list_volumes([project.name]):
                if volumes.docker_key(found.docker_name) in keep:
                    continue
                if await self.client.remove_volume(project.name, found.docker_name):
                    removed.append(found.docker_name)
                else:
                    log.info("volume %s still in use: removed after the next switch", found.name)
            return removed
        except Unavailable:
            log.warning("volume pruning of %s skipped: Pomegranate unreachable", project.name)
            return []

    async def _images_to_keep(self, project: Project) -> list[str]:
        images: list[str] = []
        for image in (
            await Application.filter(project=project, status__in=RELEASED, image__not_isnull=True)
            .order_by("-number")
            .values_list("image", flat=True)
        ):
            if image not in images:
                images.append(image)
        return images[: self.settings.images_kept_per_project]

    async def _rollback_target(self, project: Project, number: int | None) -> Application:
        live = await live_application(project)
        if number is None:
            if live is None:
                raise ValidationFailed("nothing is running to roll back from", field="number")
            # As on Heroku: the release before the live one.
            target = (
                await Application.filter(
                    project=project, status__in=RELEASED, number__lt=live.number
                )
                .order_by("-number")
                .first()
            )
            if target is None:
                raise ValidationFailed("no earlier release to roll back to", field="number")
            return target
        target = await Application.get_or_none(project=project, number=number)
        if target is None:
            raise NotFound(f"release v{number} of {project.name!r} not found", field="number")
        if target.status not in RELEASED or not target.image:
            raise ValidationFailed(
                f"v{number} never ran ({target.status.value}): roll back to a release that did",
                field="number",
            )
        if target.image not in await self._images_to_keep(project):
            raise ValidationFailed(
                f"the image of v{number} was pruned: only the last "
                f"{self.settings.images_kept_per_project} images are kept",
                field="number",
            )
        return target

    # -- reconciliation and runtime events ----------------------------------------------------

    async def desired_state(self) -> pb.DesiredState:
        desired = pb.DesiredState()
        in_flight: dict[int, list[int]] = {}
        for pid, number in await Application.filter(status__in=IN_PROGRESS).values_list(
            "project_id", "number"
        ):
            in_flight.setdefault(pid, []).append(number)
        for project in await Project.all():
            entry = pb.DesiredProject(project=project.name, in_flight=in_flight.get(project.id, []))
            live = await live_application(project)
            if live is not None and live.image:
                entry.live.CopyFrom(self._spec(live, project))
            desired.projects.append(entry)
        return desired

    async def reconcile(self) -> pb.ReconcileReport:
        started = time.perf_counter()
        desired = await self.desired_state()
        report = await self.client.reconcile(desired)
        # Issue 17: the scale bench (bench/scale.py) reads the cycle time from this line.
        log.info(
            "reconcile cycle: %d projects in %.1f ms",
            len(desired.projects),
            (time.perf_counter() - started) * 1000,
        )
        if report.removed or report.started:
            log.info(
                "reconciled: started %s, removed %s", list(report.started), list(report.removed)
            )
        return report

    async def _reconcile_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconcile_interval_seconds)
            try:
                await self.reconcile()
            except Unavailable:
                pass
            except Exception:
                # The database may be restarting: this loop must outlive it (issue 20).
                log.exception("periodic reconcile failed; trying again later")
            try:
                # Issue 15: add-on servers that are not running are brought back, and the
                # scheduled add-on backups that are due are taken.
                from backend.services import addon_backups, addons

                await addons.reconcile_all()
                await addon_backups.run_schedule(datetime.now(UTC))
            except Exception:
                log.exception("add-on reconcile or scheduled backups failed; trying again later")

    async def _watch_forever(self) -> None:
        delay = 0.2
        while True:
            call = self.client.watch()
            try:
                await call.wait_for_connection()
                # Connected (again): Pomegranate may have restarted, so converge first.
                await self.reconcile()
                self.connected.set()
                delay = 0.2
                async for event in call:
                    await self._on_runtime_event(event)
            except asyncio.CancelledError:
                call.cancel()
                raise
            except (grpc.aio.AioRpcError, Unavailable) as exc:
                log.debug("pomegranate watch interrupted: %s", exc)
            except Exception:
                log.exception("pomegranate watch failed")
            finally:
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _on_runtime_event(self, event: pb.RuntimeEvent) -> None:
        project = await Project.get_or_none(name=event.project)
        if project is None:
            return
        app = await Application.get_or_none(project=project, number=event.application)
        if app is None:
            return
        name = f"{event.process}.{event.replica}"
        if event.kind in ("die", "oom") and app.status == S.RUNNING:
            # During a switch the old release's containers are stopped on purpose; exits by
            # SIGTERM (143) or a clean 0 are our own stops too.
            if await Application.filter(project=project, status=S.DEPLOYING).exists():
                return
            if project.id in self._restarting:  # restart web.2: stopped on purpose too
                return
            if event.oom_killed or event.kind == "oom":
                await set_status(
                    app, S.CRASHED, f"{name} ran out of memory (limit {app.memory_mb} MB)"
                )
            elif event.exit_code not in (0, 143):
                await set_status(app, S.CRASHED, f"{name} exited with code {event.exit_code}")
        elif event.kind == "start" and app.status == S.CRASHED:
            await set_status(app, S.RUNNING, f"{name} restarted")


def _env_of(app: Application) -> dict[str, str]:
    return json.loads(security.decrypt(app.env_snapshot)) if app.env_snapshot else {}


def effective_replicas(scale: dict[str, int], processes: dict[str, str]) -> dict[str, int]:
    """web runs 1 replica unless scaled; other process types run only when scaled (as Heroku)."""
    return {
        t: 0 if t == L.RELEASE_PROCESS else scale.get(t, 1 if t == L.WEB_PROCESS else 0)
        for t in processes
    }


async def _settings_changed(project: Project, message: str) -> None:
    await get_bus().publish(
        project_topic(project.id),
        EventKind.SETTINGS_CHANGED,
        {"project": project.name, "message": message},
    )


# ---------------------------------------------------------------------------------------------
# Process-wide instance (the API process creates it in its lifespan)

_deployer: Deployer | None = None


def set_deployer(deployer: Deployer | None) -> None:
    global _deployer
    _deployer = deployer


def get_deployer() -> Deployer:
    if _deployer is None:
        raise Unavailable("deployments are not enabled in this process")
    return _deployer
