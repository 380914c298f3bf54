"""A local HTTP receiver for alert webhooks (issue 18): records every POSTed JSON body."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Receiver:
    """A local HTTP server recording every POST; answers `statuses` in turn, then 200."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def events(self) -> list[str]:
        return [r.get("event", "") for r in self.received]


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    """POST /hook records; POST /moved redirects to /hook (deliveries must not follow it)."""
    rec = Receiver()

    async def hook(request: web.Request) -> web.Response:
        rec.received.append(await request.json())
        return web.Response(status=rec.statuses.pop(0) if rec.statuses else 200)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/hook")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        await runner.cleanup()
