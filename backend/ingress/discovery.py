"""Keeps the RouteTable in step with Docker: a full listing, then the event stream.

Order matters: the event stream is opened *before* each full listing, so nothing that happens
while we list is missed (events queued meanwhile are applied afterwards; every handler is
idempotent). Events change the table at once:

* ``kill`` (a terminating signal), ``stop``, ``die``: the container leaves the rotation
  immediately and stays out until its next ``start``. Docker emits ``kill`` when a stop begins,
  while the app may still finish in-flight requests: this is the drain. A periodic resync never
  puts a stopping container back.
* ``start``: inspect it, add it, and probe it (HTTP health path from the labels, else a TCP
  exchange; the rule of backend/engine/health.py, the one Pomegranate applies) before routing to
  it: a just-started process is often not listening yet. A container
  with a Docker health check is routed on ``health_status: healthy`` instead.
* ``health_status``: gate on the new status.
* ``destroy``: forget it.

A full resync runs every RESYNC_SECONDS as a safety net and whenever the stream reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiodocker
import aiohttp

from backend import labels as L
from backend.engine.events import EngineEvent, container_events
from backend.engine.health import delays, probe
from backend.engine.inspect import inspect_container, inspect_containers
from backend.ingress.routes import Container, RouteTable, container_from_inspect

log = logging.getLogger(__name__)

RESYNC_SECONDS = 30.0
RECONNECT_MAX_SECONDS = 5.0
PROBE_GIVE_UP_SECONDS = 300.0  # the next resync probes again
EVENT_ACTIONS = ["start", "restart", "kill", "die", "stop", "destroy", "health_status"]
# Signals that end the process (docker stop sends SIGTERM, or the image's StopSignal, then KILL);
# a `docker kill -s HUP` is not a stop.
TERMINATING_SIGNALS = {"2", "3", "9", "15", "SIGINT", "SIGQUIT", "SIGKILL", "SIGTERM"}


class Discovery:
    def __init__(
        self,
        docker: aiodocker.Docker,
        table: RouteTable,
        session: aiohttp.ClientSession,
        instance: str = L.DEFAULT_INSTANCE,
    ) -> None:
        self.docker = docker
        self.label_filters = L.instance_filters(instance)
        self.table = table
        self.session = session
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        self._synced_once = False
        self.ready = asyncio.Event()  # set after the first full listing

    # ------------------------------------------------------------------------------ running

    async def run(self) -> None:
        """Follow Docker until cancelled, reconnecting (and resyncing) when the stream drops."""
        resync = asyncio.create_task(self._periodic_resync())
        delay = 0.5
        try:
            while True:
                try:
                    await self._follow()
                    delay = 0.5
                    await asyncio.sleep(delay)  # the engine closed the stream: reopen soon
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("docker event stream failed: %s; reconnecting in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        finally:
            resync.cancel()
            for task in self._probes.values():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resync

    async def _follow(self) -> None:
        # The engine has accepted the stream when the block starts; events queue in it while
        # we list.
        async with container_events(self.docker, self.label_filters, EVENT_ACTIONS) as events:
            await self.resync()
            async for event in events:
                await self.handle_event(event)
            log.info("docker event stream ended")

    async def _periodic_resync(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            try:
                await self.resync()
            except Exception as exc:
                log.warning("periodic resync failed: %s", exc)

    # ------------------------------------------------------------------------------ listing

    async def resync(self) -> None:
        """Rebuild the table from a full listing of our containers (all states)."""
        async with self._lock:
            datas = await inspect_containers(self.docker, self.label_filters)
            containers = [c for d in datas if (c := container_from_inspect(d)) is not None]
            self.table.sync(containers, trust_running=not self._synced_once)
            self._synced_once = True
            for cid in list(self._probes):
                if cid not in self.table.container_ids():
                    self._cancel_probe(cid)
            for c in containers:
                self._maybe_probe(c)
            log.info(
                "routes resynced: %s",
                ", ".join(f"{h}={len(u)}" for h, u in sorted(self.table.hosts().items())) or "none",
            )
        self.ready.set()

    # ------------------------------------------------------------------------------ events

    async def handle_event(self, event: EngineEvent) -> None:
        kind, detail, cid = event.kind, event.detail or "", event.container_id
        attributes = event.attributes
        async with self._lock:
            if kind in ("stop", "die") or (
                kind == "kill" and str(attributes.get("signal", "15")) in TERMINATING_SIGNALS
            ):
                self._cancel_probe(cid)
                if self.table.mark_stopping(cid):
                    log.info("%s %s: out of rotation", kind, _short(cid, attributes))
            elif kind == "destroy":
                self._cancel_probe(cid)
                if self.table.remove(cid):
                    log.info("destroy %s: forgotten", _short(cid, attributes))
            elif kind in ("start", "restart"):
                self.table.clear_stopping(cid)
                await self._refresh(cid)
            elif kind == "health_status":
                if not self.table.set_health(cid, detail):
                    await self._refresh(cid)
                log.info("health %s: %s", _short(cid, attributes), detail)

    async def _refresh(self, cid: str) -> None:
        data = await inspect_container(self.docker, cid)
        container = container_from_inspect(data) if data else None
        if container is None:
            self._cancel_probe(cid)
            self.table.remove(cid)
            return
        self.table.upsert(container)
        self._maybe_probe(container)

    # ------------------------------------------------------------------------------ probes

    def _maybe_probe(self, container: Container) -> None:
        if not self.table.needs_probe(container.id):
            return
        task = self._probes.get(container.id)
        if task is not None and not task.done():
            return
        self._probes[container.id] = asyncio.create_task(self._probe_until_ready(container))

    def _cancel_probe(self, cid: str) -> None:
        task = self._probes.pop(cid, None)
        if task is not None:
            task.cancel()

    async def probe_now(self, cid: str) -> None:
        """One readiness probe right away, for a container Pomegranate just found healthy (issue
        17: backend/ingress/route_status.py), instead of waiting for the probe's back-off."""
        container = self.table.get(cid)
        if container is None or container.host_port is None or not self.table.needs_probe(cid):
            return
        if await probe(container.host_port, container.health_path, session=self.session) is None:
            current = self.table.get(cid)
            port = container.host_port
            if current is not None and current.host_port == port and self.table.needs_probe(cid):
                self.table.set_ready(cid)
                log.info("ready %s on 127.0.0.1:%d (asked)", container.name, port)

    async def _probe_until_ready(self, container: Container) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + PROBE_GIVE_UP_SECONDS
        schedule = delays()
        port = container.host_port
        assert port is not None
        try:
            while loop.time() < give_up:
                if await probe(port, container.health_path, session=self.session) is None:
                    current = self.table.get(container.id)
                    if current is not None and current.host_port == port:
                        self.table.set_ready(container.id)
                        log.info("ready %s on 127.0.0.1:%d", container.name, port)
                    return
                await asyncio.sleep(next(schedule))
            log.warning("%s never answered its readiness probe", container.name)
        finally:
            if self._probes.get(container.id) is asyncio.current_task():
                del self._probes[container.id]


def _short(cid: str, attributes: dict[str, str]) -> str:
    return str(attributes.get("name") or cid[:12])
