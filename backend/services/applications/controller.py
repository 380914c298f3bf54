"""The controller: the desired state of every project, pushed to Pomegranate (reconcile, on each
(re)connection and periodically), and the runtime events it reports turned into statuses
(a live release that crashes, or comes back)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

from backend.db.models import Application, Project
from backend.db.models import ApplicationStatus as S
from backend.errors import Unavailable
from backend.rpc import pomegranate_types as pt
from backend.rpc.pomegranate_client import PomegranateClient
from backend.services.applications import spec
from backend.services.applications.status import IN_PROGRESS, LIVE, set_status
from backend.settings import Settings

log = logging.getLogger("paastech.deployments")


class Controller:
    def __init__(self, pomegranate: PomegranateClient, settings: Settings) -> None:
        self.pomegranate = pomegranate
        self.settings = settings
        # Set while the watch stream is connected (and the first reconcile is done).
        self.connected = asyncio.Event()
        # Projects whose processes are being restarted on purpose (restart web.2): their
        # containers' exits are not crashes. A Counter: two restarts of one project may overlap.
        self._restarting: Counter[int] = Counter()

    @contextlib.contextmanager
    def restarting(self, project_id: int) -> Iterator[None]:
        """While inside, the project's container exits are restarts on purpose, not crashes."""
        self._restarting[project_id] += 1
        try:
            yield
        finally:
            self._restarting[project_id] -= 1
            if self._restarting[project_id] <= 0:
                del self._restarting[project_id]

    async def desired_state(self) -> list[pt.DesiredProject]:
        desired = []
        in_flight: dict[int, list[int]] = {}
        for pid, number in await Application.filter(status__in=IN_PROGRESS).values_list(
            "project_id", "number"
        ):
            in_flight.setdefault(pid, []).append(number)
        # Every project's live release in one query (projects.live_application's rule: the
        # highest-numbered LIVE one); one query per project was most of a 100-project cycle.
        lives: dict[int, Application] = {}
        for app in await Application.filter(status__in=LIVE).order_by("project_id", "-number"):
            lives.setdefault(app.project_id, app)
        for project in await Project.all():
            live = lives.get(project.id)
            desired.append(
                pt.DesiredProject(
                    project=project.name,
                    live=spec.release_spec(live, project, self.settings)
                    if live is not None and live.image
                    else None,
                    in_flight=tuple(in_flight.get(project.id, [])),
                )
            )
        return desired

    async def reconcile(self) -> pt.ReconcileReport:
        started = time.perf_counter()
        desired = await self.desired_state()
        read = time.perf_counter()
        report = await self.pomegranate.reconcile(desired)
        # Issue 17: the scale bench (bench/scale.py) reads the cycle time from this line; the
        # split says which side a slow cycle is on.
        log.info(
            "reconcile cycle: %d projects in %.1f ms (desired state %.1f ms, Pomegranate %.1f ms)",
            len(desired),
            (time.perf_counter() - started) * 1000,
            (read - started) * 1000,
            (time.perf_counter() - read) * 1000,
        )
        if report.removed or report.started:
            log.info(
                "reconciled: started %s, removed %s", list(report.started), list(report.removed)
            )
        return report

    async def reconcile_periodically(self) -> None:
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

    async def watch_forever(self) -> None:
        delay = 0.2
        while True:
            call = self.pomegranate.watch()
            try:
                await call.connected()
                # Connected (again): Pomegranate may have restarted, so converge first.
                await self.reconcile()
                self.connected.set()
                delay = 0.2
                async for event in call:
                    await self.on_runtime_event(event)
            except asyncio.CancelledError:
                call.cancel()
                raise
            except Unavailable as exc:
                log.debug("pomegranate watch interrupted: %s", exc)
            except Exception:
                log.exception("pomegranate watch failed")
            finally:
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def on_runtime_event(self, event: pt.RuntimeEvent) -> None:
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
                    app,
                    S.CRASHED,
                    f"{name} ran out of memory (limit {app.memory_mb} MB)",
                    oom_killed=True,
                )
            elif event.exit_code not in (0, 143):
                await set_status(app, S.CRASHED, f"{name} exited with code {event.exit_code}")
        elif event.kind == "start" and app.status == S.CRASHED:
            await set_status(app, S.RUNNING, f"{name} restarted")
