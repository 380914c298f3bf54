"""What fires an alert, and the fan-out to the project's webhooks.

- release failed / release live / OOM kill: from a release's status change (set_status's hook);
  an OOM kill is the engine's typed flag (State.OOMKilled or its "oom" event, carried by the
  runtime event's ``oom_killed``), never a match on the crash text;
- crash loop: CRASH_LOOP_COUNT crashes of a project within CRASH_LOOP_SECONDS (once per window);
- memory high: a process above MEMORY_FRACTION of its limit in every sample for
  MEMORY_HIGH_SECONDS (the metrics collector's samples); once, again only after it went below.

Deliveries run as background tasks: a slow receiver never holds up a release or a sample."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.alerts.delivery import deliver
from backend.db.models import ApplicationStatus as S
from backend.db.models import Project, Webhook, WebhookDelivery
from backend.settings import Settings, get_settings

log = logging.getLogger("paastech.alerts")

RELEASE_FAILED = "release_failed"
RELEASE_LIVE = "release_live"
CRASH_LOOP = "crash_loop"
OOM_KILL = "oom_kill"
MEMORY_HIGH = "memory_high"
EVENTS = (RELEASE_FAILED, RELEASE_LIVE, CRASH_LOOP, OOM_KILL, MEMORY_HIGH)

CRASH_LOOP_COUNT = 3
CRASH_LOOP_SECONDS = 600.0
MEMORY_FRACTION = 0.9
MEMORY_HIGH_SECONDS = 300.0


class Alerts:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._crashes: dict[str, deque[datetime]] = {}
        self._loop_reported: dict[str, datetime] = {}
        self._high_since: dict[tuple[str, str], datetime] = {}
        self._high_reported: set[tuple[str, str]] = set()

    async def notify(self, project: str, event: str, text: str, **extra: Any) -> int:
        """Queue one delivery per webhook of the project; answers how many."""
        hooks = await Webhook.filter(project__name=project)
        payload = {
            "text": f"[{project}] {text}",
            "event": event,
            "project": project,
            "at": datetime.now(UTC).isoformat(),
            **extra,
        }
        for hook in hooks:
            row = await WebhookDelivery.create(
                webhook=hook, event=event, text=payload["text"][:1000]
            )
            task = asyncio.create_task(deliver(row, hook.url, payload, self.settings))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(hooks)

    async def drain(self) -> None:
        """Wait for the deliveries in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def status_changed(
        self,
        project: Project,
        number: int,
        old: S,
        new: S,
        reason: str | None,
        *,
        oom_killed: bool = False,
    ) -> None:
        name = project.name
        if new == S.FAILED:
            await self.notify(
                name,
                RELEASE_FAILED,
                f"Release v{number} failed: {reason or 'unknown reason'}",
                release=number,
            )
        elif new == S.RUNNING and old == S.DEPLOYING:
            await self.notify(name, RELEASE_LIVE, f"Release v{number} is live", release=number)
        elif new == S.CRASHED:
            if oom_killed:
                await self.notify(
                    name,
                    OOM_KILL,
                    f"Release v{number}: {reason or 'a process was killed: out of memory'}",
                    release=number,
                )
            await self._crashed(name, number, datetime.now(UTC))

    async def _crashed(self, project: str, number: int, now: datetime) -> None:
        window = timedelta(seconds=CRASH_LOOP_SECONDS)
        times = self._crashes.setdefault(project, deque(maxlen=CRASH_LOOP_COUNT))
        times.append(now)
        if len(times) < CRASH_LOOP_COUNT or now - times[0] > window:
            return
        reported = self._loop_reported.get(project)
        if reported is not None and now - reported < window:
            return
        self._loop_reported[project] = now
        await self.notify(
            project,
            CRASH_LOOP,
            f"Release v{number} is crash looping: {CRASH_LOOP_COUNT} crashes within "
            f"{CRASH_LOOP_SECONDS / 60:g} minutes",
            release=number,
        )

    async def memory_sampled(
        self, usage: dict[tuple[str, str], tuple[int, int]], now: datetime
    ) -> None:
        """(project, process) -> (memory bytes, limit bytes), one metrics sample."""
        for key, (memory, limit) in usage.items():
            if limit <= 0 or memory < MEMORY_FRACTION * limit:
                self._high_since.pop(key, None)
                self._high_reported.discard(key)
                continue
            since = self._high_since.setdefault(key, now)
            if key in self._high_reported or (now - since).total_seconds() < MEMORY_HIGH_SECONDS:
                continue
            self._high_reported.add(key)
            project, process = key
            await self.notify(
                project,
                MEMORY_HIGH,
                f"{process} has used more than {MEMORY_FRACTION:.0%} of its memory limit for "
                f"{MEMORY_HIGH_SECONDS / 60:g} minutes "
                f"({memory / 2**20:.0f} of {limit / 2**20:.0f} MiB)",
                process=process,
            )
        for key in [k for k in self._high_since if k not in usage]:  # gone processes
            self._high_since.pop(key, None)
            self._high_reported.discard(key)


_alerts: Alerts | None = None


def get_alerts() -> Alerts:
    global _alerts
    if _alerts is None:
        _alerts = Alerts()
    return _alerts


async def status_changed(
    project: Project,
    number: int,
    old: S,
    new: S,
    reason: str | None,
    *,
    oom_killed: bool = False,
) -> None:
    """set_status's hook: never lets an alert problem fail a status change."""
    try:
        await get_alerts().status_changed(project, number, old, new, reason, oom_killed=oom_killed)
    except Exception:
        log.exception("alerts for %s v%d (%s) failed", project.name, number, new)
