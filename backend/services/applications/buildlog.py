"""An Application's build log: numbered lines persisted first, then published, and followed.

A subscriber that reconnects loses nothing: it reads the stored lines, then the live ones, until
the release reaches a finished status (status.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from backend import deploy_output
from backend.db.models import Application, BuildLog
from backend.events import Event, EventKind, build_log_topic, get_bus, project_topic
from backend.services import quotas
from backend.services.applications.status import FINISHED, is_finished
from backend.settings import get_settings


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
            await self.write(deploy_output.from_build(line))
        elif self.build_lines == int(self.build_lines_limit) + 1:
            await self.write(
                deploy_output.failure(
                    f"quota {quotas.BUILD_LOG_LINES} reached: limit "
                    f"{self.build_lines_limit:g} lines per build; the rest of the build output is "
                    "dropped (the build goes on)"
                )
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
        async with get_bus().subscribe(project_topic(app.project_id)) as statuses:
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


async def _merge(
    logs: AsyncIterator[Event], statuses: AsyncIterator[Event]
) -> AsyncIterator[tuple[str, Event]]:
    queue: asyncio.Queue[tuple[str, Event]] = asyncio.Queue()

    async def pump(name: str, it: AsyncIterator[Event]) -> None:
        async for item in it:
            await queue.put((name, item))

    tasks = [asyncio.create_task(pump("log", logs)), asyncio.create_task(pump("status", statuses))]
    try:
        while True:
            yield await queue.get()
    finally:
        for t in tasks:
            t.cancel()
