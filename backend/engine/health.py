"""Whether a container's app answers on its published port: the one readiness rule, used by
Pomegranate before a release switches and by the ingress before it routes to a replica.

* With a health path: HTTP GET ``http://127.0.0.1:<port><path>`` (redirects not followed). The
  default path ``/`` is healthy on any answer below 500 (many APIs answer 404 there); a path the
  owner configured must answer below 400 (2xx or 3xx, as Traefik's own health check wants).
* Without one: a TCP exchange. docker-proxy accepts connections even when nothing listens in the
  container and then closes them at once, so an immediate EOF means "not listening yet"; an
  answer, or a connection held open, means something listens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import aiohttp

DEFAULT_PATH = "/"
CONNECT_SECONDS = 2.0  # connect, and a whole HTTP answer
HOLD_SECONDS = 1.0  # a connection held open this long without an answer: something listens
# Probe schedule: every 25 ms for the first 60 probes (about two seconds with the probes' own
# time), then x1.3 per attempt up to one a second. Most apps answer within that first stretch,
# and a flat fast rate keeps the time between "it answers" and "we saw it" (push-to-live,
# release switch: issue 17) near 12 ms; a growing delay wasted up to 160 ms at half a second.
FIRST_DELAY = 0.025
FAST_PROBES = 60
BACKOFF = 1.3
MAX_DELAY = 1.0


def healthy_status(path: str, status: int) -> bool:
    """The rule for an HTTP answer to the probe of ``path``."""
    return status < (500 if path == DEFAULT_PATH else 400)


def delays() -> Iterator[float]:
    """Seconds to wait between probes, endless."""
    for _ in range(FAST_PROBES):
        yield FIRST_DELAY
    delay = FIRST_DELAY
    while True:
        delay = min(delay * BACKOFF, MAX_DELAY)
        yield delay


async def probe(
    port: int,
    path: str | None,
    *,
    session: aiohttp.ClientSession | None = None,
    host: str = "127.0.0.1",
) -> str | None:
    """None when the app answered as the rule wants; else why not. ``session``: a client session
    to reuse (the ingress keeps one); without it the probe opens its own."""
    if path is not None:
        return await _http(session, host, port, path)
    return await _tcp(host, port)


async def _http(
    session: aiohttp.ClientSession | None, host: str, port: int, path: str
) -> str | None:
    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(aiohttp.ClientSession())
        try:
            async with session.get(
                f"http://{host}:{port}{path}",
                timeout=aiohttp.ClientTimeout(total=CONNECT_SECONDS),
                allow_redirects=False,
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"GET {path}: {type(exc).__name__} {exc}".strip()
    if healthy_status(path, status):
        return None
    return f"GET {path} answered {status}"


async def _tcp(host: str, port: int) -> str | None:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout=CONNECT_SECONDS
        )
    except (OSError, TimeoutError) as exc:
        return f"TCP connect: {exc}"
    try:
        writer.write(b"HEAD / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        await writer.drain()
        try:
            data = await asyncio.wait_for(reader.read(1), timeout=HOLD_SECONDS)
        except TimeoutError:
            return None  # held open: something listens and waits for more
        return None if data else "TCP connection closed without an answer"
    except OSError as exc:
        return f"TCP exchange: {exc}"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
