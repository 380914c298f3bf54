"""A fake Docker engine for unit tests: an aiohttp app served on a free 127.0.0.1 port, with an
aiodocker client pointed at it (tests/unit/test_engine_helper.py, test_docker_layer.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiodocker
from aiohttp import web

API = "v1.45"


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[aiodocker.Docker]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    docker = aiodocker.Docker(url=f"http://127.0.0.1:{port}", api_version=API)
    try:
        yield docker
    finally:
        await docker.close()
        await runner.cleanup()
