"""The release queue: one worker per project, a newer queued release replaces an older one.

Each job is kept in DATA_DIR/queue/<application id>.json until it finishes, so releases a
stopped API left queued, building or deploying run again from their start when it comes back
(``resume_interrupted``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from backend import deploy_output
from backend.db.models import Application, Project
from backend.db.models import ApplicationStatus as S
from backend.errors import Unavailable
from backend.services.applications.buildlog import BuildLogWriter
from backend.services.applications.status import IN_PROGRESS, set_status

log = logging.getLogger("paastech.deployments")

# How long a release waits for Pomegranate to (re)connect before it fails: long enough for the
# supervisor to restart a crashed Pomegranate (issue 20).
POMEGRANATE_WAIT_SECONDS = 30.0
# How long a project's queue stays idle before its clean-up (retention) runs: a release that
# follows within it starts at once (issue 17). Clean-up is disk space, never urgent.
TIDY_DELAY_SECONDS = 2.0


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


class JobStore:
    """The queued jobs on disk, one file each, written atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "queue"
        self.tmp_dir = data_dir / "tmp"

    def path(self, application_id: int) -> Path:
        return self.dir / f"{application_id}.json"

    def save(self, job: Job) -> None:
        path = self.path(job.application_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(job.to_json())
        tmp.replace(path)  # atomic: a crash leaves the old file or the new one, never half

    def load(self, application_id: int) -> Job | None:
        try:
            return Job.from_json(application_id, self.path(application_id).read_text())
        except (OSError, ValueError, KeyError):
            return None

    def drop(self, job: Job) -> None:
        """The job's file and its source: the job finished, failed or was replaced."""
        self.path(job.application_id).unlink(missing_ok=True)
        if job.source:
            job.source.unlink(missing_ok=True)

    def sweep(self, keep: set[int]) -> None:
        """Remove jobs of releases not in ``keep`` and spooled sources no kept job names."""
        for path in self.dir.glob("*.json") if self.dir.is_dir() else []:
            # Jobs of releases that finished or were deleted while the file stayed behind.
            if not path.stem.isdigit() or int(path.stem) not in keep:
                job = self.load(int(path.stem)) if path.stem.isdigit() else None
                if job is not None:
                    self.drop(job)
                path.unlink(missing_ok=True)
        kept = {str(j.source) for i in keep if (j := self.load(i)) and j.source}
        for path in self.tmp_dir.glob("source-*.tar") if self.tmp_dir.is_dir() else []:
            if str(path) not in kept:  # spooled by a push the crash cut short
                path.unlink(missing_ok=True)


Runner = Callable[[Job], Awaitable[None]]


class ReleaseQueue:
    """Per project: at most one job running and one pending; a new job replaces the pending one
    (its release fails "replaced by vN before it started").

    ``tidy(project_id)`` (retention: old images and volumes) runs in the project's worker once
    no job has come for ``tidy_delay`` seconds after the last one: a release pushed or
    configured right after another starts at once instead of after the other's clean-up
    (issue 17), and the clean-up never runs beside one of the project's builds (it would see
    that build's image in the registry as no release's, and delete it)."""

    def __init__(
        self,
        store: JobStore,
        run: Runner,
        ready: asyncio.Event,
        tidy: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self._run = run
        self._tidy = tidy
        self.tidy_delay = TIDY_DELAY_SECONDS
        self._arrived: dict[int, asyncio.Event] = {}  # set by enqueue: a worker waiting wakes
        # Set while Pomegranate is connected; a job waits for it (up to POMEGRANATE_WAIT_SECONDS).
        self._ready = ready
        self._pending: dict[int, Job] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}

    async def enqueue(self, project: Project, job: Job) -> None:
        self.store.save(job)
        replaced = self._pending.get(project.id)
        self._pending[project.id] = job
        if replaced is not None:
            old = await Application.get(id=replaced.application_id)
            new = await Application.get(id=job.application_id)
            await set_status(old, S.FAILED, f"replaced by v{new.number} before it started")
            self.store.drop(replaced)
        self._arrived.setdefault(project.id, asyncio.Event()).set()
        worker = self._workers.get(project.id)
        if worker is None or worker.done():
            self._workers[project.id] = asyncio.create_task(
                self._work(project.id), name=f"deploy-{project.name}"
            )

    def pending(self, project_id: int) -> Job | None:
        return self._pending.get(project_id)

    def cancel(self, project_id: int) -> None:
        """The project goes away: its running job is cancelled, its pending one dropped."""
        pending = self._pending.pop(project_id, None)
        worker = self._workers.pop(project_id, None)
        self._arrived.pop(project_id, None)
        if worker is not None:
            worker.cancel()
        if pending:
            self.store.drop(pending)

    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._workers.values())

    async def _work(self, project_id: int) -> None:
        untidy = False
        arrived = self._arrived.setdefault(project_id, asyncio.Event())
        while True:
            arrived.clear()
            job = self._pending.pop(project_id, None)
            if job is None:
                if not untidy or self._tidy is None:
                    break
                # A release often follows another within a second (a push, then a config
                # change): it runs first, the clean-up after.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), self.tidy_delay)
                if project_id in self._pending:
                    continue
                untidy = False
                try:
                    await self._tidy(project_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("clean-up after the releases of project %s failed", project_id)
                continue  # a job may have come meanwhile
            untidy = True
            try:
                # Pomegranate may be restarting (its supervisor brings it back in seconds).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), POMEGRANATE_WAIT_SECONDS)
                await self._run(job)
            except asyncio.CancelledError:
                # The API is stopping: the job file stays, the next start resumes the release.
                raise
            except Unavailable as exc:
                await _fail_if_in_progress(job, exc.message)
            except Exception:
                log.exception("release %s failed unexpectedly", job.application_id)
                await _fail_if_in_progress(job, "internal error; it has been logged")
            self.store.drop(job)  # finished, one way or another (not on cancel: see above)
        # No await between the empty queue and this line: an enqueue cannot slip in between.
        self._workers.pop(project_id, None)
        self._arrived.pop(project_id, None)


async def _fail_if_in_progress(job: Job, reason: str) -> None:
    app = await Application.get_or_none(id=job.application_id)
    if app is not None and app.status in IN_PROGRESS:
        await set_status(app, S.FAILED, reason)


async def resume_interrupted(queue: ReleaseQueue) -> None:
    """Every release still queued, building or deploying when the API stopped (crash, kill -9,
    restart) runs again from its start. Per project only the newest runs (as when a newer
    release replaces a queued one); a release whose job or source is gone fails with the reason.
    Pomegranate makes a repeated release idempotent (one that had switched already is recognised
    as live)."""
    store = queue.store
    newest: dict[int, int] = {}
    interrupted = (
        await Application.filter(status__in=IN_PROGRESS)
        .order_by("project_id", "-number")
        .prefetch_related("project")
    )
    store.sweep({app.id for app in interrupted})
    for app in interrupted:
        job = store.load(app.id)
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
                await out.write(
                    deploy_output.heading("The platform restarted: this release resumes")
                )
                await queue.enqueue(app.project, job)
                continue
            except Exception as exc:
                # One release that cannot resume fails alone: the API still starts.
                log.exception("v%d of %s could not resume", app.number, app.project.name)
                reason = f"interrupted by an API restart and could not be resumed: {exc}"
        if job is not None:
            store.drop(job)
        await set_status(app, S.FAILED, reason)
