"""Issue 17: a release is live once healthy and routed; the old release drains after.

release() over the fake runtime with a fake router, and the ingress's route-status socket
(backend/ingress/route_status.py) over a real unix socket with a real RouteTable.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import pytest

from backend.ingress import route_status
from backend.ingress.routes import RouteTable
from backend.pomegranate import release as release_module
from backend.pomegranate.release import ReleaseResult, release
from tests.support.polling import within
from tests.unit.test_ingress_routes import container
from tests.unit.test_reconciler import SETTINGS, FakeRuntime, Logs, name_of, plan

OLD_WEB = name_of("app", 1, "web", 1)


class GatedStops(FakeRuntime):
    """Stops begin (recorded) at once but end only when ``release_stops`` is set: the drain."""

    def __init__(self) -> None:
        super().__init__()
        self.stop_begun = asyncio.Event()
        self.release_stops = asyncio.Event()

    async def stop(self, container_id: str, timeout: float = 10) -> None:  # noqa: ASYNC109
        self.stop_begun.set()
        await self.release_stops.wait()
        await super().stop(container_id, timeout)


class Router:
    """A route waiter answering ``answer``; records what it was asked and what the fake engine
    held at that moment."""

    def __init__(self, rt: FakeRuntime, answer: bool | None) -> None:
        self.rt = rt
        self.answer = answer
        self.asked: list[tuple[list[str], list[str]]] = []

    async def __call__(self, routed: list[str], unrouted: list[str], seconds: float) -> bool | None:
        self.asked.append((list(routed), list(unrouted)))
        if unrouted and isinstance(self.rt, GatedStops):
            # As the ingress: an old container leaves the rotation on its stop's "kill" event.
            await self.rt.stop_begun.wait()
        return self.answer


class Live:
    def __init__(self, rt: FakeRuntime) -> None:
        self.rt = rt
        self.results: list[ReleaseResult] = []
        self.names_then: list[str] = []
        self.event = asyncio.Event()

    async def __call__(self, result: ReleaseResult) -> None:
        self.results.append(result)
        self.names_then = self.rt.names()
        self.event.set()


@pytest.fixture(autouse=True)
def long_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a router that confirms, the fixed delay must not be waited: an hour would hang the
    # test (bounded by `within`), not slow it.
    monkeypatch.setattr(release_module, "WEB_DRAIN_SECONDS", 3600.0)


async def test_routed_release_is_live_before_the_old_one_drains():
    rt = GatedStops()
    old = rt.add("app", 1, "web", 1)
    router, live, logs = Router(rt, True), Live(rt), Logs()
    task = asyncio.create_task(
        release(rt, plan("app", 2, web=2), logs, SETTINGS, routes=router, on_live=live)
    )
    async with within(10, "the release to go live while the old container drains"):
        await live.event.wait()
    (result,) = live.results
    assert result.stopped_applications == [1]
    new_ids = [c.id for c in result.containers]
    assert len(new_ids) == 2
    # Asked to route the new ones, then to take the old one out of rotation (its stop begun).
    assert router.asked == [(new_ids, []), (new_ids, [old.id])]
    assert OLD_WEB in live.names_then  # still there: draining
    assert logs[-1] == "Release 2 is live"
    assert not task.done()  # release() returns only once the old one is gone
    rt.release_stops.set()
    async with within(10, "the drain to end"):
        final = await task
    assert final.stopped_applications == [1]
    assert rt.names() == [name_of("app", 2, "web", 1), name_of("app", 2, "web", 2)]
    assert rt.stopped == [OLD_WEB]


@pytest.mark.parametrize("answer", [None, False], ids=["no ingress", "ingress timed out"])
async def test_without_a_routing_answer_live_comes_after_the_old_one_stopped(
    monkeypatch: pytest.MonkeyPatch, answer: bool | None
):
    monkeypatch.setattr(release_module, "WEB_DRAIN_SECONDS", 0.0)
    rt = FakeRuntime()
    rt.add("app", 1, "web", 1)
    router, live = Router(rt, answer), Live(rt)
    result = await release(rt, plan("app", 2, web=1), Logs(), SETTINGS, routes=router, on_live=live)
    assert live.results == [result]
    assert live.names_then == [name_of("app", 2, "web", 1)]  # the old one was gone already
    assert len(router.asked) == 1  # never asked to confirm the old one left the rotation


async def test_first_release_is_live_once_routed_and_tells_once():
    rt = FakeRuntime()
    router, live = Router(rt, True), Live(rt)
    await release(
        rt, plan("app", 1, web=1, worker=1), Logs(), SETTINGS, routes=router, on_live=live
    )
    assert len(live.results) == 1 and live.results[0].stopped_applications == []
    web = next(c.id for c in live.results[0].containers if c.name.endswith("web.1"))
    assert router.asked == [([web], [])]  # the worker has no route to wait for


async def test_a_failed_release_never_goes_live():
    rt = FakeRuntime()
    rt.add("app", 1, "web", 1)
    rt.unhealthy[name_of("app", 2, "web", 1)] = "container exited with code 1"
    router, live = Router(rt, True), Live(rt)
    with pytest.raises(release_module.ReleaseFailed):
        await release(rt, plan("app", 2, web=1), Logs(), SETTINGS, routes=router, on_live=live)
    assert live.results == [] and router.asked == []
    assert rt.names() == [OLD_WEB]


async def test_cancel_after_live_still_finishes_the_drain():
    rt = GatedStops()
    rt.add("app", 1, "web", 1)
    live = Live(rt)
    task = asyncio.create_task(
        release(rt, plan("app", 2, web=1), Logs(), SETTINGS, routes=Router(rt, True), on_live=live)
    )
    async with within(10, "the release to go live"):
        await live.event.wait()
    task.cancel()
    rt.release_stops.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rt.names() == [name_of("app", 2, "web", 1)]


# ------------------------------------------------------------------ the ingress's socket

NEW = "a" * 64
OLD = "b" * 64


@pytest.mark.parametrize(
    "raw",
    [
        b"not json\n",
        b"[]\n",
        b'{"routed": "' + NEW.encode() + b'"}\n',
        b'{"routed": ["../etc"]}\n',
        b'{"unrouted": ["ABCDEF123456"]}\n',
        b'{"routed": [], "timeout": -1}\n',
        b'{"routed": [], "timeout": true}\n',
        json.dumps({"routed": [NEW] * 1001}).encode() + b"\n",
    ],
)
def test_bad_route_status_requests_are_refused(raw: bytes):
    with pytest.raises(route_status.BadRequest):
        route_status.parse_request(raw)


def test_route_status_timeout_is_capped():
    assert route_status.parse_request(b'{"routed": [], "timeout": 1e9}') == (
        [],
        [],
        route_status.MAX_TIMEOUT_SECONDS,
    )


@pytest.fixture
async def ingress_socket():
    table = RouteTable()
    kicked: list[str] = []

    async def kick(cid: str) -> None:
        kicked.append(cid)

    # Short: unix socket paths are limited to about 100 bytes.
    path = Path(tempfile.mkdtemp(prefix="route-status-")) / "ingress.sock"
    server = await route_status.serve(table, path, kick)
    assert server is not None
    assert path.stat().st_mode & 0o777 == 0o600
    try:
        yield table, path, kicked
    finally:
        server.close()
        await server.wait_closed()
        path.unlink(missing_ok=True)
        path.parent.rmdir()


async def test_route_status_answers_once_new_routed_and_old_out(ingress_socket):
    table, path, kicked = ingress_socket
    table.upsert(container(OLD, port=32001), ready=True)
    table.upsert(container(NEW, port=32002))  # started, not yet probed
    asking = asyncio.create_task(route_status.wait_routes(path, [NEW], [OLD], 10))
    async with within(10, "the ingress to ask for a probe of the new container"):
        while kicked != [NEW]:
            await asyncio.sleep(0.01)
    table.set_ready(NEW)
    assert not asking.done()  # the old one is still routed
    table.mark_stopping(OLD)
    async with within(15, "the ingress's answer"):
        assert await asking is True


async def test_route_status_times_out_false_and_refuses_bad_requests(ingress_socket):
    table, path, _ = ingress_socket
    table.upsert(container(NEW, port=32003))
    assert await route_status.wait_routes(path, [NEW], [], 0.05) is False
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(b'{"routed": ["not-an-id"]}\n')
    answer = json.loads(await reader.readline())
    writer.close()
    assert answer["ok"] is False and "container ids" in answer["error"]
    assert table.is_routable(NEW) is False  # a bad request changes nothing


async def test_no_ingress_on_the_socket_is_none(tmp_path: Path):
    assert await route_status.wait_routes(tmp_path / "absent.sock", [NEW], [], 1) is None
    stale = tmp_path / "stale.sock"
    stale.write_bytes(b"")  # not a socket: as good as absent
    assert await route_status.wait_routes(stale, [NEW], [], 1) is None


# ------------------------------------------------------------------ Pomegranate's service


async def test_release_stream_ends_at_live_and_processes_wait_for_the_drain():
    from backend.pomegranate.service import PomegranateService
    from backend.rpc import pomegranate_pb2 as pb

    rt = GatedStops()
    rt.add("app", 1, "web", 1)
    service = PomegranateService(rt, SETTINGS)
    router = Router(rt, True)
    service._route_waiter = router  # type: ignore[method-assign]
    spec = pb.ReleaseSpec(
        project="app",
        application=2,
        image="paastech/app-app:2",
        processes=[pb.Process(type="web", command="run web", replicas=1)],
        hostnames=["app.localhost"],
        health_timeout=5,
        # What the API's spec.py fills in: Pomegranate refuses a spec without them.
        port=5000,
        memory_mb=256,
        cpu=0.5,
    )
    async with within(10, "the Release stream to end at live"):
        events = [e async for e in service.Release(spec, None)]
    assert events[-1].WhichOneof("event") == "done"
    assert list(events[-1].done.stopped_applications) == [1]
    assert OLD_WEB in rt.names()  # the stream ended while the old release drains
    assert "app" in service._draining
    # The listing's first step is queued before the stop's wake-up: without the wait for the
    # drain it would list the old container too.
    listing = asyncio.create_task(service.ListProcesses(pb.ProjectRef(project="app"), None))
    rt.release_stops.set()
    async with within(10, "processes after the drain"):
        listed = await listing
    assert [c.name for c in listed.containers] == [name_of("app", 2, "web", 1)]
    # The project's lock is free again: the next release does not wait.
    assert not service._locks["app"].locked() and "app" not in service._draining
