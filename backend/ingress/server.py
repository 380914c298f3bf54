"""Wires the ingress together and runs it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import aiodocker
from aiohttp import web

from backend.ingress.discovery import Discovery
from backend.ingress.proxy import (
    MAX_FIELD_SIZE,
    MAX_HEADERS,
    MAX_LINE_SIZE,
    Proxy,
    make_session,
)
from backend.ingress.routes import RouteTable
from backend.settings import Settings, get_settings

log = logging.getLogger(__name__)

FIRST_SYNC_WAIT_SECONDS = 10.0  # serve even when Docker does not answer (every host is 404)
SHUTDOWN_GRACE_SECONDS = 10.0
CLIENT_KEEPALIVE_SECONDS = 75.0


def create_app(proxy: Proxy) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    return app


async def serve(settings: Settings | None = None) -> None:
    s = settings or get_settings()
    table = RouteTable()
    session = make_session()
    docker = aiodocker.Docker(url=s.docker_url or None)
    discovery = Discovery(docker, table, session, instance=s.instance)
    proxy = Proxy(table, session)
    runner = web.AppRunner(
        create_app(proxy),
        access_log=None,  # the proxy logs one line per request itself
        handler_cancellation=True,  # a client that goes away stops its upstream exchange
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        keepalive_timeout=CLIENT_KEEPALIVE_SECONDS,
        max_line_size=MAX_LINE_SIZE,
        max_field_size=MAX_FIELD_SIZE,
        max_headers=MAX_HEADERS,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    follow = asyncio.create_task(discovery.run())
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(discovery.ready.wait(), FIRST_SYNC_WAIT_SECONDS)
        await runner.setup()
        site = web.TCPSite(runner, s.host, s.ingress_port)
        await site.start()
        log.info(
            "ingress listening on http://%s:%d (apps at http://<project>.%s:%d)",
            s.host,
            s.ingress_port,
            s.base_domain,
            s.ingress_port,
        )
        await stop.wait()
        log.info("ingress stopping")
    finally:
        await runner.cleanup()
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
        await session.close()
        await docker.close()
