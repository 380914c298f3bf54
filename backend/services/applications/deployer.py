"""The deployer: the API's entry points into the release lifecycle, one per API process.

Every push, config change, scale, rollback or restart becomes a new Application (release) that
goes through its project's queue (queue.py) and the pipeline's stages (pipeline.py):
queued -> building (source only) -> deploying -> running, or failed. The controller
(controller.py) keeps Pomegranate converged and turns its runtime events into statuses.
Callers have checked ownership.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

from tortoise.transactions import in_transaction

from backend import labels as L
from backend.db.models import Application, Project, StatusChange
from backend.db.models import ApplicationStatus as S
from backend.errors import (
    DISK_FULL_MESSAGE,
    Conflict,
    Unavailable,
    ValidationFailed,
    is_disk_full,
)
from backend.events import EventKind, get_bus, project_topic
from backend.rpc import pomegranate_types as pt
from backend.rpc.pomegranate_client import PomegranateClient
from backend.services import activity, config, quotas
from backend.services.applications import pipeline, retention, spec
from backend.services.applications.controller import Controller
from backend.services.applications.queue import Job, JobStore, ReleaseQueue, resume_interrupted
from backend.services.applications.status import IN_PROGRESS, RELEASED, set_status
from backend.services.build_slots import FairSlots
from backend.services.projects import live_application
from backend.settings import Settings, get_settings

log = logging.getLogger("paastech.deployments")


class Deployer:
    def __init__(self, pomegranate: PomegranateClient, settings: Settings | None = None) -> None:
        self.pomegranate = pomegranate
        self.settings = settings or get_settings()
        self.controller = Controller(pomegranate, self.settings)
        self.queue = ReleaseQueue(
            JobStore(self.settings.data_dir), self._run, self.controller.connected, self._tidy
        )
        self._background: list[asyncio.Task[None]] = []
        # Builds of all projects share these slots round-robin across Clients (issue 11).
        self.build_slots = FairSlots(self.settings.max_concurrent_builds)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume the releases a previous API process left half-done, then watch Pomegranate."""
        await resume_interrupted(self.queue)
        self._background = [
            asyncio.create_task(self.controller.watch_forever(), name="pomegranate-watch"),
            asyncio.create_task(self.controller.reconcile_periodically(), name="reconcile"),
        ]

    async def stop(self) -> None:
        tasks = [*self._background, *self.queue.tasks()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.pomegranate.close()

    @property
    def connected(self) -> asyncio.Event:
        return self.controller.connected

    @property
    def sources_dir(self) -> Path:
        path = self.settings.data_dir / "sources"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def source_path(self, project: Project) -> Path:
        """The project's last built source (what `deploy` builds again)."""
        return self.sources_dir / f"{project.name}.tar"

    async def _run(self, job: Job) -> None:
        ctx = pipeline.Context(
            job, self.pomegranate, self.settings, self.build_slots, self.source_path
        )
        await pipeline.run(ctx)

    async def _tidy(self, project_id: int) -> None:
        """Retention after a project's releases: the images no kept release runs, the volumes
        the project no longer names (each skipped, logged, while Pomegranate is away)."""
        project = await Project.get_or_none(id=project_id)
        if project is None:
            return
        await retention.prune_images(
            self.pomegranate, project, self.settings.images_kept_per_project
        )
        await retention.prune_volumes(self.pomegranate, project)

    # -- entry points -------------------------------------------------------------------------

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
        job = Job(app.id, source=source)
        try:
            await self.queue.enqueue(project, job)
        except OSError as exc:
            # The job could not be kept (a full disk): the release fails with the reason.
            self.queue.store.drop(job)  # frees what it can
            reason = DISK_FULL_MESSAGE if is_disk_full(exc) else f"could not queue: {exc}"
            await set_status(app, S.FAILED, reason)
        await activity.record(
            project.owner_id,
            "deploy",
            project=project,
            release=app.number,
            cause=cause,
            commit=commit_sha,
        )
        return app

    async def redeploy(self, project: Project) -> Application:
        current = self.source_path(project)
        if not current.exists():
            raise ValidationFailed("nothing to deploy yet: push your code first", field="project")
        copy = self.sources_dir / f".{project.name}.{datetime.now(UTC).timestamp()}.tar"
        await asyncio.to_thread(shutil.copyfile, current, copy)
        return await self.deploy_source(project, copy, commit_sha=None, cause="redeploy")

    async def release_config(self, project: Project, cause: str) -> Application | None:
        """A new release of the live image with the project's config as it is now; None while
        nothing runs (the next deploy picks the change up). Callers: config_changes.py."""
        if await live_application(project) is None:
            return None
        app = await self._new_application(project, cause)
        await self.queue.enqueue(project, Job(app.id))
        return app

    async def rollback(self, project: Project, number: int | None) -> Application:
        target = await retention.rollback_target(
            project, number, self.settings.images_kept_per_project
        )
        async with in_transaction():
            # As on Heroku, a rollback restores the config of that release too.
            await config.replace_env(project, spec.env_of(target))
        app = await self._new_application(
            project, f"rollback to v{target.number}", commit_sha=target.commit_sha
        )
        await self.queue.enqueue(project, Job(app.id, image_from=target.id))
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
        await self.queue.enqueue(project, Job(app.id))
        await activity.record(project.owner_id, "restart", project=project, release=app.number)
        return app

    async def restart_processes(
        self, project: Project, process_type: str, replica: int | None
    ) -> list[pt.Container]:
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
        await activity.record(
            project.owner_id,
            "restart.processes",
            project=project,
            processType=process_type,
            replica=replica,
        )
        with self.controller.restarting(project.id):
            return await self.pomegranate.restart_processes(
                project.name,
                live.number,
                process_type,
                replica or 0,
                self.settings.health_check_timeout_seconds,
            )

    async def stop_project(self, project: Project) -> Application:
        live = await live_application(project)
        if live is None:
            raise ValidationFailed("nothing is running", field="project")
        # A release on its way would go live after the stop and undo it: refused until then.
        pending = (
            await Application.filter(project=project, status__in=IN_PROGRESS)
            .order_by("-number")
            .first()
        )
        if pending is not None:
            raise Conflict(
                f"v{pending.number} is being released ({pending.status.value.lower()}); "
                "stop once it has finished",
                field="project",
            )
        await self.pomegranate.stop_project(project.name)
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
        await self.queue.enqueue(project, Job(app.id, image_from=base.id))
        await activity.record(project.owner_id, "start", project=project, release=app.number)
        return app

    async def remove_project(self, project: Project) -> None:
        self.queue.cancel(project.id)
        self.source_path(project).unlink(missing_ok=True)
        try:
            await self.pomegranate.remove_project(project.name)
        except Unavailable:
            # The periodic reconcile removes the containers of deleted projects later.
            log.warning("could not remove containers of %s now; reconcile will", project.name)

    def release_spec(self, app: Application, project: Project) -> pt.ReleaseSpec:
        """What runs for ``app`` (also the base of a one-off command's container, issue 14)."""
        return spec.release_spec(app, project, self.settings)

    async def prune_volumes(self, project: Project) -> list[str]:
        return await retention.prune_volumes(self.pomegranate, project)

    async def reconcile(self) -> pt.ReconcileReport:
        return await self.controller.reconcile()

    # -- new releases -------------------------------------------------------------------------

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
