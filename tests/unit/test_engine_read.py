"""The Docker read layer (backend/engine/): the one readiness rule and probe, shared by
Pomegranate and the ingress, and the parsing of engine events both consume."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web

from backend.engine import health
from backend.engine.events import parse_event
from backend.engine.health import healthy_status, probe
from backend.engine.inspect import parse_time
from backend.engine.logs import LineSplitter
from backend.ingress import discovery
from backend.pomegranate import docker_runtime


@pytest.mark.parametrize(
    ("path", "status", "healthy"),
    [
        ("/", 200, True),
        ("/", 302, True),
        ("/", 404, True),  # the default path: many APIs answer 404 there
        ("/", 499, True),
        ("/", 500, False),
        ("/", 503, False),
        ("/health", 200, True),
        ("/health", 301, True),
        ("/health", 399, True),
        ("/health", 400, False),  # a path the owner set must answer 2xx/3xx
        ("/health", 404, False),
        ("/health", 500, False),
    ],
)
def test_the_one_health_rule(path: str, status: int, healthy: bool) -> None:
    assert healthy_status(path, status) is healthy


def test_pomegranate_and_the_ingress_probe_with_the_same_code() -> None:
    assert docker_runtime.probe is health.probe
    assert discovery.probe is health.probe


def test_probe_schedule_backs_off_to_one_second() -> None:
    schedule = health.delays()
    first = [next(schedule) for _ in range(health.FAST_PROBES + 40)]
    assert first[: health.FAST_PROBES] == [health.FIRST_DELAY] * health.FAST_PROBES
    assert first[health.FAST_PROBES] > health.FIRST_DELAY
    assert all(a <= b for a, b in itertools.pairwise(first))
    assert first[-1] == health.MAX_DELAY


@contextlib.asynccontextmanager
async def _http_app(statuses: dict[str, int]) -> AsyncIterator[int]:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=statuses.get(request.path, 404))

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_http_probe_applies_the_rule() -> None:
    async with _http_app({"/": 404, "/health": 200, "/broken": 404, "/down": 500}) as port:
        assert await probe(port, "/") is None
        assert await probe(port, "/health") is None
        assert await probe(port, "/broken") == "GET /broken answered 404"
        assert await probe(port, "/down") == "GET /down answered 500"


async def _tcp_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_tcp_probe_tells_a_listener_from_an_immediate_close() -> None:
    async def close_at_once(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readline()
        w.write(b"HTTP/1.0 200 OK\r\n\r\n")
        await w.drain()
        w.close()

    closing, closing_port = await _tcp_server(close_at_once)
    answering, answering_port = await _tcp_server(answer)
    async with closing, answering:
        assert await probe(closing_port, None) == "TCP connection closed without an answer"
        assert await probe(answering_port, None) is None
    # Nothing listens there any more.
    reason = await probe(closing_port, None)
    assert reason is not None and reason.startswith("TCP connect")
    http_reason = await probe(answering_port, "/")
    assert http_reason is not None and http_reason.startswith("GET /: ClientConnectorError")


def test_parse_event() -> None:
    event = parse_event(
        {
            "Type": "container",
            "Action": "health_status: healthy",
            "Actor": {"ID": "abc123", "Attributes": {"name": "p.shop.1.web.1", "exitCode": "137"}},
            "timeNano": 1_700_000_000_500_000_000,
        }
    )
    assert event is not None
    assert (event.kind, event.detail, event.container_id) == ("health_status", "healthy", "abc123")
    assert event.exit_code == 137
    assert event.attributes["name"] == "p.shop.1.web.1"
    assert event.time == datetime.fromtimestamp(1_700_000_000.5, UTC)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"Action": "start", "Actor": {"Attributes": {}}},  # no container
        {"Action": "", "Actor": {"ID": "abc"}},  # no action
    ],
)
def test_parse_event_ignores_what_is_not_a_container_event(data: dict[str, object]) -> None:
    assert parse_event(data) is None


def test_parse_event_old_format_and_odd_exit_code() -> None:
    event = parse_event({"status": "die", "id": "abc", "time": 1_700_000_000})
    assert event is not None and event.kind == "die" and event.container_id == "abc"
    assert event.time == datetime.fromtimestamp(1_700_000_000, UTC)
    odd = parse_event({"Action": "die", "Actor": {"ID": "abc", "Attributes": {"exitCode": "x"}}})
    assert odd is not None and odd.exit_code is None


def test_parse_time_and_line_splitter() -> None:
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("2026-12-03T11:00:00.123456789Z") == datetime(
        2026, 12, 3, 11, 0, 0, 123456, UTC
    )
    splitter = LineSplitter()
    assert splitter.feed("\x1b[32mgreen\x1b[0m\r\npar") == ["green"]
    assert splitter.feed("tial\n") == ["partial"]
    assert splitter.feed("rest") == []
    assert splitter.flush() == ["rest"]
