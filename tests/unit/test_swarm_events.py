"""SwarmRuntime.events(): the task-state watch (issue 16). The manager is an in-memory one (its
services, tasks and nodes listings); each poll of the watch is handed one scripted snapshot, so
the test decides exactly what the watch sees and when. The cluster behaviour itself is tested on
a real Swarm in tests/integration/test_swarm_runtime.py (the 2→5→1 scale test)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend import labels as L
from backend.pomegranate import swarm_runtime
from backend.pomegranate.runtime import ContainerInfo
from backend.pomegranate.swarm_runtime import SwarmRuntime
from backend.settings import Settings
from tests.support.polling import within

SERVICE = {
    "ID": "svc1",
    "Spec": {
        "Name": "paastech_blog_web",
        "Labels": L.ownership_labels("blog", 7, "web", instance="paastech"),
    },
}
NODES = [{"ID": "n1", "Status": {"Addr": "10.231.7.11"}}]


def task(tid: str, slot: int, state: str = "running", desired: str = "running") -> dict:
    return {
        "ID": tid,
        "ServiceID": "svc1",
        "Slot": slot,
        "NodeID": "n1",
        "DesiredState": desired,
        "Status": {"State": state, "Timestamp": "2026-12-03T11:05:38.123456789Z"},
    }


class Listing:
    def __init__(self, items: list[dict]) -> None:
        self.items = items

    async def list(self, *, filters: Any = None) -> list[dict]:
        return list(self.items)


class Manager:
    """What SwarmRuntime asks the manager for a listing, from lists the test sets."""

    def __init__(self) -> None:
        self.services = Listing([SERVICE])
        self.tasks = Listing([])
        self.nodes = Listing(NODES)

    async def close(self) -> None:
        pass


@pytest.fixture
async def watched(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[SwarmRuntime, Manager, asyncio.Queue, list[tuple[str, str]]]]:
    """The runtime, its manager, the queue of the watch's poll snapshots, and the events seen
    so far (kind, task id), by a watch running from the start."""
    monkeypatch.setattr(swarm_runtime, "EVENTS_POLL_SECONDS", 0)
    manager = Manager()
    runtime = SwarmRuntime(Settings(runtime="swarm"), manager=manager)  # type: ignore[arg-type]
    polls: asyncio.Queue[list[dict]] = asyncio.Queue()

    async def poll() -> list[ContainerInfo]:
        nodes = {"n1": "10.231.7.11"}
        return [runtime.task_info(t, SERVICE, nodes) for t in await polls.get()]

    monkeypatch.setattr(runtime, "all_tasks", poll)
    seen: list[tuple[str, str]] = []

    async def watch() -> None:
        async for event in runtime.events():
            seen.append((event.kind, event.container_id))

    watcher = asyncio.create_task(watch())
    yield runtime, manager, polls, seen
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher


async def polled(polls: asyncio.Queue, *snapshots: list[dict]) -> None:
    """Hand the watch each snapshot, one poll after the other, and wait until it took them."""
    for snapshot in snapshots:
        polls.put_nowait(snapshot)
    async with within(5, "the watch to poll"):
        while not polls.empty():
            await asyncio.sleep(0.01)


async def events_seen(seen: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    async with within(5, lambda: f"{n} events, seen {seen}"):
        while len(seen) < n:
            await asyncio.sleep(0.01)
    return list(seen)


async def test_tasks_that_ran_only_between_two_polls_are_reported(watched):
    runtime, manager, polls, seen = watched
    # The watch's first look: two tasks run (no events: a watch reports changes).
    await polled(polls, [task("t1", 1), task("t2", 2)])
    # A deploy scales up and converges: its own listing sees the new tasks running...
    manager.tasks.items = [task("t1", 1), task("t2", 2), task("t3", 3), task("t4", 4)]
    containers = await runtime.list_containers("blog")
    assert sorted(c.id for c in containers if c.running) == ["t1", "t2", "t3", "t4"]
    # ...and a scale-down removes them (and stops t2) before the watch looks again. The poll
    # under way when the listing ran may predate t3 and t4: the next one judges them.
    after = [task("t1", 1), task("t2", 2, "running", "shutdown")]
    await polled(polls, after, after)
    got = await events_seen(seen, 5)
    assert sorted(got) == [
        ("die", "t2"),
        ("die", "t3"),
        ("die", "t4"),
        ("start", "t3"),
        ("start", "t4"),
    ]
    for tid in ("t3", "t4"):
        assert got.index(("start", tid)) < got.index(("die", tid))
    # An ended task a late listing still saw running is not reported again, nor is anything
    # else: the next event is t1's end, two polls later.
    manager.tasks.items = [task("t1", 1), task("t3", 3)]
    await runtime.list_containers("blog")
    await polled(polls, [task("t1", 1), task("t3", 3, "shutdown", "remove")], [task("t1", 1)])
    await polled(polls, [task("t1", 1, "failed", "shutdown")])
    assert (await events_seen(seen, 6))[5:] == [("die", "t1")]


async def test_a_task_listed_during_a_poll_is_not_taken_for_ended(watched):
    runtime, manager, polls, seen = watched
    await polled(polls, [])
    # The watch's next poll has begun (it waits for its snapshot, which predates t1); a
    # deploy's listing meanwhile sees t1 running.
    manager.tasks.items = [task("t1", 1)]
    await runtime.list_containers("blog")
    # The snapshot taken before t1 existed gives no verdict on t1; once the watch takes the
    # third snapshot it is done with the first two: t1 started, and is still running.
    await polled(polls, [], [task("t1", 1)], [task("t1", 1)])
    assert seen == [("start", "t1")]
    await polled(polls, [])  # t1 removed
    assert await events_seen(seen, 2) == [("start", "t1"), ("die", "t1")]


async def test_a_task_seen_starting_then_running_starts_once(watched):
    _, _, polls, seen = watched
    await polled(polls, [], [task("t1", 1, "starting")], [task("t1", 1)], [task("t1", 1)])
    await polled(polls, [])  # removed (a scale to 0)
    assert await events_seen(seen, 2) == [("start", "t1"), ("die", "t1")]


async def test_a_task_that_never_ran_is_no_start_and_no_end(watched):
    _, _, polls, seen = watched
    await polled(polls, [], [task("t1", 1, "starting")])
    await polled(polls, [task("t1", 1, "failed", "shutdown")])  # never got healthy
    await polled(polls, [task("t2", 1)])
    assert await events_seen(seen, 1) == [("start", "t2")]
