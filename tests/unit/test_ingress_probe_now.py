"""Discovery.probe_now (issue 17): the probe Pomegranate asks for once it found a container
healthy. mypy (issue 13) found it calling the probe with its old arguments, so it raised
TypeError, and it read the probe's answer (None: ready; else why not) the wrong way round."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from backend.ingress.discovery import Discovery
from backend.ingress.routes import RouteTable
from tests.unit.test_ingress_routes import container


@pytest.fixture
async def app_port() -> AsyncIterator[int]:
    """An app answering 200 on /up and 500 on /down, on a free port of 127.0.0.1."""

    async def up(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def down(_: web.Request) -> web.Response:
        return web.Response(status=500, text="not yet")

    app = web.Application()
    app.router.add_get("/up", up)
    app.router.add_get("/down", down)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port
    finally:
        await runner.cleanup()


async def _probe_now(port: int, path: str) -> RouteTable:
    table = RouteTable()
    c = dataclasses.replace(container("c1", port=port), health=None, health_path=path)
    table.upsert(c)
    assert table.needs_probe("c1")
    async with aiohttp.ClientSession() as session:
        await Discovery(None, table, session).probe_now("c1")  # probe_now never asks Docker
    return table


async def test_probe_now_routes_a_container_that_answers(app_port: int) -> None:
    table = await _probe_now(app_port, "/up")
    assert table.is_routable("c1")
    assert not table.needs_probe("c1")


async def test_probe_now_leaves_a_failing_container_unrouted(app_port: int) -> None:
    table = await _probe_now(app_port, "/down")
    assert not table.is_routable("c1")
    assert table.needs_probe("c1")
