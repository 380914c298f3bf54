"""Tells Pomegranate when the embedded ingress routes a release (issue 17).

A release is live once every new web container is healthy *and routed*: the ingress has it in its
route table as routable, and no longer routes to the old release's containers. Only the ingress
knows that, so it answers on a unix socket in the routing directory (``ingress.sock``, mode 0600,
the same host and user as Pomegranate; never on the network):

    request  {"routed": [container id, ...], "unrouted": [container id, ...], "timeout": 5.0}\\n
    answer   {"ok": true}\\n     (every ``routed`` id routable, no ``unrouted`` id routable)
             {"ok": false}\\n    (not so when ``timeout`` ran out)

The ingress probes an awaited container at once (Pomegranate just found it healthy) instead of
waiting for its own probe's back-off. Without an ingress on the socket (Traefik, a test without
one, a path too long for a unix socket) ``wait_routes`` returns None and the caller falls back to
a fixed delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from backend.ingress.routes import RouteTable

log = logging.getLogger(__name__)

SOCKET_NAME = "ingress.sock"
POLL_SECONDS = 0.01  # in-process: a dict look-up per awaited container
MAX_REQUEST_BYTES = 64 * 1024
MAX_IDS = 1000
MAX_TIMEOUT_SECONDS = 60.0
_CONTAINER_ID = re.compile(r"[0-9a-f]{12,64}")

Kick = Callable[[str], Awaitable[None]]


def socket_path(routing_dir: Path) -> Path:
    return routing_dir / SOCKET_NAME


class BadRequest(ValueError):
    pass


def parse_request(raw: bytes) -> tuple[list[str], list[str], float]:
    """The ids to wait for and the timeout; BadRequest on anything else."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadRequest("not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("not an object")
    lists = []
    for key in ("routed", "unrouted"):
        ids = data.get(key, [])
        if not isinstance(ids, list) or len(ids) > MAX_IDS:
            raise BadRequest(f"{key}: a list of at most {MAX_IDS} container ids")
        if not all(isinstance(i, str) and _CONTAINER_ID.fullmatch(i) for i in ids):
            raise BadRequest(f"{key}: container ids are 12 to 64 lowercase hex digits")
        lists.append(ids)
    timeout = data.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        raise BadRequest("timeout: a number of seconds >= 0")
    return lists[0], lists[1], min(float(timeout), MAX_TIMEOUT_SECONDS)


def satisfied(table: RouteTable, routed: list[str], unrouted: list[str]) -> bool:
    return all(table.is_routable(c) for c in routed) and not any(
        table.is_routable(c) for c in unrouted
    )


async def wait_until(
    table: RouteTable, routed: list[str], unrouted: list[str], seconds: float, kick: Kick
) -> bool:
    """Whether the table reached the wanted state within ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    kicked: set[str] = set()
    while not satisfied(table, routed, unrouted):
        for cid in routed:
            if cid not in kicked and table.needs_probe(cid):
                kicked.add(cid)
                await kick(cid)
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


def _replace_stale(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a socket left by an ingress that did not stop cleanly


async def serve(table: RouteTable, path: Path, kick: Kick) -> asyncio.AbstractServer | None:
    """Listen on ``path`` (replacing a stale socket); None when it cannot (logged)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await reader.readline()
            try:
                routed, unrouted, timeout = parse_request(raw)
            except BadRequest as exc:
                answer: dict[str, object] = {"ok": False, "error": str(exc)}
            else:
                answer = {"ok": await wait_until(table, routed, unrouted, timeout, kick)}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            log.debug("route status request failed: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    try:
        _replace_stale(path)
        server = await asyncio.start_unix_server(handle, str(path), limit=MAX_REQUEST_BYTES)
        os.chmod(path, 0o600)
    except OSError as exc:
        log.warning("route status socket %s unavailable (%s): releases wait a delay", path, exc)
        return None
    return server


async def wait_routes(
    path: Path, routed: list[str], unrouted: list[str], seconds: float
) -> bool | None:
    """Ask the ingress on ``path`` to answer once ``routed`` are routable and ``unrouted`` are
    not: True when so, False when ``seconds`` ran out first, None when no ingress answers."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_REQUEST_BYTES)
    except OSError:
        return None
    try:
        request = {"routed": routed, "unrouted": unrouted, "timeout": seconds}
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        # The ingress answers at its own timeout; a little more here for the round trip.
        raw = await asyncio.wait_for(reader.readline(), seconds + 2.0)
        answer = json.loads(raw)
        return bool(answer.get("ok")) if isinstance(answer, dict) else None
    except (OSError, ValueError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
