"""The /run websocket of the API (issue 14): `paastech run -p NAME -- CMD...` streams here.

Not a GraphQL subscription: a subscription only streams from the server, and a one-off command
needs the client's stdin (and terminal resizes) going the other way for as long as it runs. So a
plain authenticated websocket, with a small protocol (docs/architecture.md, "One-off commands"):

* the upgrade request carries ``Authorization: Bearer <token>``;
* client -> API: first a text frame, JSON ``{"project", "command": [argv], "tty", "detach",
  "rows", "cols"}``; then binary frames (stdin bytes) and text frames ``{"type": "stdin_closed"}``
  or ``{"type": "resize", "rows", "cols"}``;
* API -> client: text frames ``{"type": "started", "name"}``, ``{"type": "exit", "code",
  "reason"}`` or ``{"type": "error", "code", "message"}`` (nothing started), and binary frames:
  one byte 1 (stdout) or 2 (stderr), then the output bytes.

The client going away cancels the command: Pomegranate removes its container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from backend.api.context import bearer_from_header
from backend.errors import PaasError, Unauthenticated, ValidationFailed
from backend.rpc import pomegranate_types as pt
from backend.services import accounts, oneoff

log = logging.getLogger("paastech.api.run")

STDOUT, STDERR = 1, 2
START_TIMEOUT_SECONDS = 10.0
MAX_START_BYTES = 128 * 1024
INPUT_QUEUE = 64
CLOSE_NORMAL = 1000
CLOSE_REFUSED = 4400


def parse_start(text: str | None) -> oneoff.RunRequest:
    """The first frame; ValidationFailed when it is not the start object."""
    if text is None or len(text) > MAX_START_BYTES:
        raise ValidationFailed("the first message must be the command, as JSON", field="command")
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise ValidationFailed(
            "the first message must be the command, as JSON", field="command"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("project"), str):
        raise ValidationFailed("the first message must name the project", field="project")

    def number(key: str) -> int:
        value = data.get(key, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return oneoff.RunRequest(
        project=data["project"],
        command=oneoff.check_command(data.get("command")),
        tty=data.get("tty") is True,
        detach=data.get("detach") is True,
        rows=number("rows"),
        cols=number("cols"),
        addon=data["addon"] if isinstance(data.get("addon"), str) else "",
    )


def _input(message: Mapping[str, Any]) -> pt.RunInput | None:
    if message.get("bytes") is not None:
        return pt.RunInput(stdin=message["bytes"])
    try:
        data = json.loads(message.get("text") or "")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("type") == "stdin_closed":
        return pt.RunInput(stdin_closed=True)
    if data.get("type") == "resize":
        try:
            size = oneoff.terminal_size(int(data.get("rows") or 0), int(data.get("cols") or 0))
        except (TypeError, ValueError):
            return None
        return pt.RunInput(resize=size) if size is not None else None
    return None


async def _refuse(ws: WebSocket, exc: PaasError) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"type": "error", "code": exc.code, "message": exc.message}))
        await ws.close(CLOSE_REFUSED)


async def run_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    token = bearer_from_header(ws.headers.get("authorization"))
    found = await accounts.authenticate(token) if token else None
    if found is None:
        await _refuse(
            ws, Unauthenticated("log in first: your token is missing, invalid, expired or revoked")
        )
        return
    client, _ = found
    try:
        first = await asyncio.wait_for(ws.receive(), START_TIMEOUT_SECONDS)
        if first["type"] == "websocket.disconnect":
            return
        request = parse_start(first.get("text"))
    except TimeoutError:
        await _refuse(ws, ValidationFailed("no command was sent", field="command"))
        return
    except PaasError as exc:
        await _refuse(ws, exc)
        return

    queue: asyncio.Queue[pt.RunInput | None] = asyncio.Queue(maxsize=INPUT_QUEUE)

    async def inputs() -> AsyncIterator[pt.RunInput]:
        while (item := await queue.get()) is not None:
            yield item

    async def receive() -> None:
        """Client -> command, until the client goes away (the return ends the session)."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                item = _input(message)
                if item is not None:
                    await queue.put(item)

    async def relay() -> None:
        events = oneoff.run(client, request, inputs())
        async with contextlib.aclosing(events):
            async for event in events:
                kind = event.kind
                if kind == "stdout":
                    await ws.send_bytes(bytes([STDOUT]) + event.data)
                elif kind == "stderr":
                    await ws.send_bytes(bytes([STDERR]) + event.data)
                elif kind == "started":
                    await ws.send_text(json.dumps({"type": "started", "name": event.started}))
                elif kind == "exit":
                    await ws.send_text(
                        json.dumps(
                            {"type": "exit", "code": event.exit_code, "reason": event.reason}
                        )
                    )
                    return
                elif kind == "failure":
                    await ws.send_text(
                        json.dumps(
                            {
                                "type": "error",
                                "code": "UNAVAILABLE",
                                "message": event.reason,
                            }
                        )
                    )
                    return

    relaying = asyncio.create_task(relay())
    receiving = asyncio.create_task(receive())
    try:
        await asyncio.wait({relaying, receiving}, return_when=asyncio.FIRST_COMPLETED)
        if not relaying.done():
            # The client went away (Ctrl-C, a dropped connection): cancelling closes the call,
            # and Pomegranate removes the container.
            log.info("one-off of %s: the client went away", request.project)
            relaying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relaying
    except PaasError as exc:
        await _refuse(ws, exc)
        return
    finally:
        receiving.cancel()
        await asyncio.gather(relaying, receiving, return_exceptions=True)
    if ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(CLOSE_NORMAL)
