"""One release's way through the platform, as named stages over one context (as Dokku's read):

    receive -> build -> release -> deploy -> check -> finish

receive  loads the Application and opens its build log;
build    builds the pushed source into an image (or takes the image a config change reuses);
release  freezes the project's config into the Application (a release = image + config);
deploy   has Pomegranate start the release's containers and switch traffic to them;
check    reads Pomegranate's verdict (it health-checked the new containers before switching);
finish   marks it RUNNING, the previous ones SUPERSEDED, and prunes images and volumes.

A stage that fails raises DeployFailed: the stage's name, the reason and the app's last lines
are recorded (build log, status reason, server log) and no later stage runs.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend import deploy_output as line
from backend.db.models import Application, Project
from backend.db.models import ApplicationStatus as S
from backend.rpc.pomegranate_client import (
    BuildOutput,
    DeployFailed,
    PomegranateClient,
    ReleaseOutput,
)
from backend.services import quotas, serving
from backend.services.applications import spec
from backend.services.applications.buildlog import BuildLogWriter
from backend.services.applications.queue import Job
from backend.services.applications.status import LIVE, set_status
from backend.services.build_slots import FairSlots
from backend.services.projects import live_application
from backend.settings import Settings

log = logging.getLogger("paastech.deployments")

LAST_LINES_IN_REASON = 10


@dataclass
class Context:
    """Everything the stages share about one release."""

    job: Job
    pomegranate: PomegranateClient
    settings: Settings
    build_slots: FairSlots
    # Where a successful build's source is kept (redeploy builds it again).
    current_source: Callable[[Project], Path]
    app: Application = field(init=False)
    project: Project = field(init=False)
    out: BuildLogWriter = field(init=False)
    built: BuildOutput | None = None
    released: ReleaseOutput | None = None
    stage: str = ""
    # Milliseconds per finished stage, logged once per release: where a release's time went.
    timings: dict[str, float] = field(default_factory=dict)


Stage = Callable[[Context], Awaitable[None]]


async def receive(ctx: Context) -> None:
    ctx.app = await Application.get(id=ctx.job.application_id).prefetch_related("project")
    ctx.project = ctx.app.project
    ctx.out = await BuildLogWriter.open(ctx.app, ctx.project.owner_id)


async def build(ctx: Context) -> None:
    if ctx.job.source is None:
        await _reuse_image(ctx)
        return
    app, project, out, slots = ctx.app, ctx.project, ctx.out, ctx.build_slots
    if slots.busy():
        await out.write(
            line.heading(
                f"Waiting for a build slot ({slots.waiting} builds "
                "waiting; slots go round-robin between clients)"
            )
        )
    async with slots.turn(project.owner_id):
        await set_status(app, S.BUILDING)
        await out.write(line.heading(f"Building {project.name} (v{app.number})"))
        built = await ctx.pomegranate.build(
            project.name, app.number, ctx.job.source, out.write_build_output
        )
    ctx.built = built
    await quotas.check_image(project.owner_id, built.image_bytes)
    app.image, app.processes = built.image, built.processes
    app.image_digest = built.image.partition("@")[2] or None
    app.port = spec.port_of(project, built.exposed_port, ctx.settings)
    await asyncio.to_thread(shutil.copyfile, ctx.job.source, ctx.current_source(project))
    await out.write(line.heading(f"Built {built.stack} app into {built.image}"))


async def _reuse_image(ctx: Context) -> None:
    """A config change, rollback, restart or start: the image of another release."""
    app, project = ctx.app, ctx.project
    base: Application | None
    if ctx.job.image_from:
        base = await Application.get(id=ctx.job.image_from)
    else:
        base = await live_application(project)
    if base is None or not base.image:
        raise DeployFailed("nothing to release: the live release is gone")
    app.image, app.processes = base.image, base.processes
    app.image_digest = base.image_digest
    app.commit_sha = app.commit_sha or base.commit_sha
    app.port = spec.port_of(project, base.port, ctx.settings)


async def release(ctx: Context) -> None:
    await spec.snapshot_config(ctx.app, ctx.project, ctx.settings)


async def deploy(ctx: Context) -> None:
    await set_status(ctx.app, S.DEPLOYING)
    await ctx.out.write(line.heading(f"Deploying v{ctx.app.number}"))
    ctx.released = await ctx.pomegranate.release(
        spec.release_spec(ctx.app, ctx.project, ctx.settings), ctx.out.write
    )


async def check(ctx: Context) -> None:
    if ctx.released is None:
        raise DeployFailed("the release ended without a result")
    # Every line before the final status: followers stop reading at the status.
    url = ctx.settings.app_url(ctx.settings.project_hostname(ctx.project.name))
    await ctx.out.write(serving.deployed_line(ctx.app.number, url, ctx.app.replicas))


async def finish(ctx: Context) -> None:
    app, project = ctx.app, ctx.project
    previous = await Application.filter(
        project=project, status__in=(*LIVE, S.STOPPED), number__lt=app.number
    )
    for old in previous:
        await set_status(old, S.SUPERSEDED, f"replaced by v{app.number}")
    await set_status(app, S.RUNNING)
    # Old images and volumes go once the project's queue is idle (queue.py, tidy).


STAGES: tuple[tuple[str, Stage], ...] = (
    ("receive", receive),
    ("build", build),
    ("release", release),
    ("deploy", deploy),
    ("check", check),
    ("finish", finish),
)


async def run(ctx: Context) -> None:
    """Every stage in order; a DeployFailed ends the release FAILED with its reason."""
    try:
        for name, stage in STAGES:
            ctx.stage = name
            started = time.perf_counter()
            await stage(ctx)
            ctx.timings[name] = (time.perf_counter() - started) * 1000
        log.info(
            "v%d of %s is live; stages (ms): %s",
            ctx.app.number,
            ctx.project.name,
            ", ".join(f"{name} {ms:.0f}" for name, ms in ctx.timings.items()),
        )
    except DeployFailed as exc:
        await _failed(ctx, exc)
    except Exception:
        log.warning("release %s: stage %s raised", ctx.job.application_id, ctx.stage)
        raise


async def _failed(ctx: Context, exc: DeployFailed) -> None:
    app, out = ctx.app, ctx.out
    log.info("v%d of %s failed at %s: %s", app.number, ctx.project.name, ctx.stage, exc.reason)
    # A build's output was streamed already; a failed start's container output was not.
    if app.status != S.BUILDING:
        for last in exc.last_lines[-LAST_LINES_IN_REASON:]:
            await out.write(line.detail(last))
    await out.write(line.failure(exc.reason))
    reason = exc.reason
    if exc.last_lines:
        reason += "\n" + "\n".join(exc.last_lines[-LAST_LINES_IN_REASON:])
    await set_status(app, S.FAILED, reason)
