"""Wires the ingress together and runs it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

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
from backend.routing import domains_path, read_table
from backend.settings import Settings, get_settings

log = logging.getLogger(__name__)

FIRST_SYNC_WAIT_SECONDS = 10.0  # serve even when Docker does not answer (every host is 404)
SHUTDOWN_GRACE_SECONDS = 10.0
CLIENT_KEEPALIVE_SECONDS = 75.0
DOMAINS_POLL_SECONDS = 0.5  # how soon a domain change in backend/routing.py's file routes


async def watch_domains(table: RouteTable, path: Path) -> None:
    """Keep the table's custom domains in step with the API's routing file (a stat per poll;
    the file is read only when it changed)."""
    seen: tuple[int, int] | None = None
    while True:
        try:
            st = os.stat(path)  # one stat per poll: not worth a thread
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp != seen:
            aliases = read_table(path)
            if aliases is not None:  # unreadable: keep the last good table
                table.set_aliases(aliases)
                seen = stamp
                log.info("custom domains: %d routed", len(aliases))
        await asyncio.sleep(DOMAINS_POLL_SECONDS)


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
    domains = asyncio.create_task(watch_domains(table, domains_path(s)))
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
        domains.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
        with contextlib.suppress(asyncio.CancelledError):
            await domains
        await session.close()
        await docker.close()
