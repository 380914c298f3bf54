"""Wires the ingress together and runs it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiodocker
from aiohttp import web

from backend.ingress import route_status
from backend.ingress.discovery import Discovery
from backend.ingress.proxy import (
    MAX_FIELD_SIZE,
    MAX_HEADERS,
    MAX_LINE_SIZE,
    Proxy,
    make_session,
)
from backend.ingress.routes import RouteTable, normalise_host
from backend.ingress.swarm_discovery import SwarmDiscovery
from backend.metrics.requests import RequestMeter, report_loop
from backend.routing import domains_path, read_table, routing_dir
from backend.settings import Settings, get_settings

if TYPE_CHECKING:
    # ACME, DNS and X.509 (about 25 MB of modules): imported by serve() only with TLS on.
    from backend.ingress.certificates import CertificateManager
    from backend.ingress.tls import SniContexts

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


CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


def create_app(proxy: Proxy) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    return app


class PlainHttp:
    """The HTTP listener in front of the proxy when the ingress terminates TLS: answers the
    CA's HTTP-01 challenges, and redirects a host to HTTPS once its certificate is served
    (never before: a host without a certificate keeps working over HTTP)."""

    def __init__(self, proxy: Proxy, certificates: CertificateManager, https_port: int) -> None:
        self.proxy = proxy
        self.certificates = certificates
        self.https_port = https_port

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path.startswith(CHALLENGE_PREFIX):
            validation = self.certificates.challenge(request.path[len(CHALLENGE_PREFIX) :])
            if validation is not None:
                return web.Response(text=validation, content_type="text/plain")
            # Never redirected: another ACME client (the app's own) may be validating.
            return await self.proxy.handle(request)
        host = normalise_host(request.headers.get("Host"))
        if host and self.certificates.serves(host):
            port = "" if self.https_port == 443 else f":{self.https_port}"
            # Permanent, like Traefik's `permanent: true`; 308 also keeps the method and body.
            raise web.HTTPPermanentRedirect(f"https://{host}{port}{request.raw_path}")
        return await self.proxy.handle(request)


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def make_runner(handler: Handler) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return web.AppRunner(
        app,
        access_log=None,  # the proxy logs one line per request itself
        handler_cancellation=True,  # a client that goes away stops its upstream exchange
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        keepalive_timeout=CLIENT_KEEPALIVE_SECONDS,
        max_line_size=MAX_LINE_SIZE,
        max_field_size=MAX_FIELD_SIZE,
        max_headers=MAX_HEADERS,
    )


async def serve(settings: Settings | None = None) -> None:
    s = settings or get_settings()
    table = RouteTable()
    session = make_session()
    docker = aiodocker.Docker(url=s.docker_url or None)
    discovery: Discovery | SwarmDiscovery
    if s.runtime == "swarm":  # issue 16: route to the Swarm's tasks, through its manager
        await docker.close()
        docker = aiodocker.Docker(url=s.swarm_docker_url)
        discovery = SwarmDiscovery(docker, table, instance=s.instance)
    else:
        discovery = Discovery(docker, table, session, instance=s.instance)
    meter = RequestMeter()  # issue 18: reported to the API every 10 s
    proxy = Proxy(table, session, meter)
    bind = s.ingress_host or s.host
    certificates: CertificateManager | None = None
    contexts: SniContexts | None = None
    if s.tls:
        from backend.ingress.certificates import CertificateManager
        from backend.ingress.tls import SniContexts

        contexts = SniContexts()
        certificates = CertificateManager(s, lambda: table.hosts().keys(), contexts)
        certificates.load()  # serve what we have before listening: a restart orders nothing
        https_port = s.public_https_port or s.ingress_https_port
        runner = make_runner(PlainHttp(proxy, certificates, https_port).handle)
        tls_runner: web.AppRunner | None = make_runner(proxy.handle)
    else:
        runner = make_runner(proxy.handle)
        tls_runner = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    follow = asyncio.create_task(discovery.run())
    tasks = [
        follow,
        asyncio.create_task(watch_domains(table, domains_path(s))),
        asyncio.create_task(report_loop(meter, s)),
    ]
    status_server: asyncio.AbstractServer | None = None
    try:
        if isinstance(discovery, Discovery):  # issue 17: releases go live once routed here
            status_server = await route_status.serve(
                table, route_status.socket_path(routing_dir(s)), discovery.probe_now
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(discovery.ready.wait(), FIRST_SYNC_WAIT_SECONDS)
        await runner.setup()
        site = web.TCPSite(runner, bind, s.ingress_port)
        await site.start()
        log.info(
            "ingress listening on http://%s:%d (apps at http://<project>.%s:%d)",
            bind,
            s.ingress_port,
            s.base_domain,
            s.ingress_port,
        )
        if tls_runner is not None and contexts is not None and certificates is not None:
            await tls_runner.setup()
            tls_site = web.TCPSite(
                tls_runner, bind, s.ingress_https_port, ssl_context=contexts.default
            )
            await tls_site.start()
            log.info(
                "ingress listening on https://%s:%d (certificates from %s)",
                bind,
                s.ingress_https_port,
                s.acme_directory_url,
            )
            tasks.append(asyncio.create_task(certificates.run()))
        await stop.wait()
        log.info("ingress stopping")
    finally:
        if status_server is not None:
            status_server.close()
        await runner.cleanup()
        if tls_runner is not None:
            await tls_runner.cleanup()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await session.close()
        await docker.close()
