"""The public GraphQL API through gql: HTTP for queries and mutations, one websocket per page task
(graphql-transport-ws, the token in the connection_init payload) for subscriptions.

Every operation the web app sends is a named operation in `operations/<Name>.graphql` (validated
against schema.graphql by tests/unit/test_web_operations.py); code names it, never inlines it.
Selections two operations share are fragments, one per `operations/fragments/<Name>.graphql`,
sent with each operation that spreads them (`...Name`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

OPERATIONS_DIR = Path(__file__).resolve().parent / "operations"
FRAGMENTS_DIR = OPERATIONS_DIR / "fragments"
# A fragment spread `...Name`; not an inline fragment (`... on Type`).
SPREAD = re.compile(r"\.\.\.\s*(?!on\b)([A-Za-z_]\w*)")


def spread_fragments(text: str) -> list[str]:
    """The names of the fragments `text` spreads, and of those they spread, each once."""
    found: list[str] = []
    pending = SPREAD.findall(text)
    while pending:
        name = pending.pop(0)
        if name not in found:
            found.append(name)
            pending.extend(SPREAD.findall(fragment(name)))
    return found


@cache
def fragment(name: str) -> str:
    """The text of operations/fragments/<name>.graphql."""
    return (FRAGMENTS_DIR / f"{name}.graphql").read_text()


@cache
def operation(name: str) -> str:
    """The document of operations/<name>.graphql, with the fragments it uses."""
    text = (OPERATIONS_DIR / f"{name}.graphql").read_text()
    return "\n".join([text, *(fragment(f) for f in spread_fragments(text))])


def api_url() -> str:
    """PAASTECH_API_URL, else http://PAASTECH_HOST:PAASTECH_API_PORT/graphql."""
    url = os.environ.get("PAASTECH_API_URL", "").strip()
    if url:
        return url
    host = os.environ.get("PAASTECH_HOST", "127.0.0.1").strip() or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = os.environ.get("PAASTECH_API_PORT", "8000").strip() or "8000"
    return f"http://{host}:{port}/graphql"


class ApiError(Exception):
    """A GraphQL error: `code` is extensions.code, `field` is extensions.field (VALIDATION)."""

    def __init__(self, message: str, code: str = "INTERNAL", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field

    @classmethod
    def from_errors(cls, errors: list[dict[str, Any]] | None, fallback: str) -> ApiError:
        first = (errors or [{}])[0] if errors else {}
        ext = first.get("extensions") or {}
        message = first.get("message") or fallback
        if ext.get("code") == "RATE_LIMITED" and ext.get("retryAfter"):
            message = f"{message} (try again in {ext['retryAfter']} s)"
        return cls(message, str(ext.get("code") or "INTERNAL"), ext.get("field"))


UNREACHABLE = "The PaaSTech API is not reachable right now. Try again in a moment."

# How long a request may take, in seconds. gql's own execute_timeout (10 s) would cut every
# request shorter than this and call a busy API unreachable while it carries the change out.
# The add-on operations answer once the server runs (EnsureAddon waits up to 90 s), or once
# a backup is captured or restored: the CLI gives them as long.
REQUEST_TIMEOUT = 60.0
LONG_REQUEST_TIMEOUT = 300.0
LONG_OPERATIONS = frozenset(
    {
        "CreateAddon",
        "AttachAddon",
        "DetachAddon",
        "RotateAddonCredentials",
        "BackupAddon",
        "RestoreAddon",
        "RemoveAddon",
    }
)


def request_timeout(name: str) -> float:
    return LONG_REQUEST_TIMEOUT if name in LONG_OPERATIONS else REQUEST_TIMEOUT


def timed_out(seconds: float) -> str:
    """Said when the API took too long: the change may still be under way, not lost."""
    return (
        f"The PaaSTech API did not answer within {seconds:g} s; the change may still be under "
        "way. Refresh in a moment to see where it stands."
    )


# Every request and subscription says it comes from the web app, and from which browser: the
# API's activity feed and login sessions show "web" and e.g. "Chrome on Linux" (its requests
# come from this server, so its own user agent would name nothing useful).
SOURCE_HEADER = "X-PaaSTech-Source"
DEVICE_HEADER = "X-PaaSTech-Device"


def client_headers(device: str = "") -> dict[str, str]:
    """The web app's source header, and the browser's user agent as the device (printable,
    bounded: it is the visitor's own text)."""
    headers = {SOURCE_HEADER: "web"}
    device = "".join(ch for ch in device if ch.isprintable()).strip()[:300]
    if device:
        headers[DEVICE_HEADER] = device
    return headers


def visitor_headers(address: str) -> dict[str, str]:
    """The visitor's address for the API's login and sign-up limits, vouched for by the key the
    platform derives for the web app (PAASTECH_WEB_FORWARD_KEY, set by scripts/web.sh). Without
    the key the API counts every web visitor as this process's address."""
    key = os.environ.get("PAASTECH_WEB_FORWARD_KEY", "").strip()
    if not key or not address:
        return {}
    return {"X-PaaSTech-Client-Address": address, "X-PaaSTech-Forward-Key": key}


async def call(
    name: str, token: str = "", *, client_address: str = "", device: str = "", **variables: Any
) -> dict[str, Any]:
    """Run the named query or mutation (operations/<name>.graphql) over HTTP; raises ApiError.
    `device` is the browser's user agent (client_headers)."""
    query = operation(name)
    headers = client_headers(device)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    headers.update(visitor_headers(client_address))
    seconds = request_timeout(name)
    transport = HTTPXAsyncTransport(url=api_url(), headers=headers, timeout=seconds)
    client = Client(transport=transport, fetch_schema_from_transport=False, execute_timeout=seconds)
    try:
        async with client as session:
            return await session.execute(GraphQLRequest(query, variable_values=variables or None))
    except TransportQueryError as exc:
        raise ApiError.from_errors(exc.errors, str(exc)) from None
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise ApiError(timed_out(seconds), "TIMEOUT") from exc
    except (TransportError, httpx.HTTPError, OSError) as exc:
        raise ApiError(UNREACHABLE, "UNAVAILABLE") from exc


@dataclass
class Event:
    """One item from a subscription: data, or its error, or the end of the stream."""

    key: str
    data: dict[str, Any] | None = None
    error: ApiError | None = None
    done: bool = False


class Subscriptions:
    """Several subscriptions multiplexed on one websocket; their events come out of one queue.

    A background task of the Reflex state owns one of these: it `start`s and `stop`s
    subscriptions by key as the page asks, and reads `next()` with a timeout so that it can
    notice that the page went away.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self._tasks: dict[str, asyncio.Task] = {}
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def running(self) -> set[str]:
        return {k for k, t in self._tasks.items() if not t.done()}

    def start(self, key: str, name: str, **variables: Any) -> None:
        """Subscribe to the named subscription (operations/<name>.graphql) under `key`."""
        self.stop(key)
        self._tasks[key] = asyncio.create_task(self._pump(key, operation(name), variables))

    def stop(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    async def _pump(self, key: str, query: str, variables: dict[str, Any]) -> None:
        try:
            request = GraphQLRequest(query, variable_values=variables or None)
            async for data in self._session.subscribe(request):
                await self.queue.put(Event(key, data=data))
            await self.queue.put(Event(key, done=True))
        except asyncio.CancelledError:
            raise
        except TransportQueryError as exc:
            await self.queue.put(Event(key, error=ApiError.from_errors(exc.errors, str(exc))))
        except Exception as exc:  # the connection dropped: the page shows it, the task ends
            await self.queue.put(Event(key, error=ApiError(UNREACHABLE, "UNAVAILABLE")))
            del exc

    async def next(self, wait: float) -> list[Event]:
        """Every event waiting (at least one), or [] after `wait` seconds of silence."""
        try:
            first = await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            return []
        events = [first]
        while not self.queue.empty() and len(events) < 500:
            events.append(self.queue.get_nowait())
        return events

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


@contextlib.asynccontextmanager
async def subscriptions(token: str, device: str = "") -> AsyncIterator[Subscriptions]:
    """One graphql-transport-ws connection, authenticated with {"token": ...} in connection_init;
    the upgrade request carries client_headers(device)."""
    transport = WebsocketsTransport(
        url=api_url().replace("http://", "ws://", 1).replace("https://", "wss://", 1),
        headers=client_headers(device),
        init_payload={"token": token},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        close_timeout=2,
    )
    client = Client(transport=transport, fetch_schema_from_transport=False)
    try:
        session = await client.connect_async(reconnecting=False)
    except TransportQueryError as exc:
        raise ApiError.from_errors(exc.errors, str(exc)) from None
    except (TransportError, OSError) as exc:
        raise ApiError(UNREACHABLE, "UNAVAILABLE") from exc
    subs = Subscriptions(session)
    try:
        yield subs
    finally:
        await subs.close()
        with contextlib.suppress(Exception):
            await client.close_async()


async def download(path: str, token: str, max_bytes: int) -> tuple[bytes, str]:
    """GET a file the API serves beside /graphql (e.g. /addon-backups/<id>) with the bearer
    token, server side: the token never reaches the browser. Returns (content, file name);
    raises ApiError with the API's code, or TOO_LARGE past max_bytes."""
    base = api_url().rsplit("/graphql", 1)[0]
    headers = {**client_headers(), "Authorization": f"Bearer {token}"}
    try:
        async with (
            httpx.AsyncClient(timeout=60) as http,
            http.stream("GET", base + path, headers=headers) as resp,
        ):
            if resp.status_code != 200:
                await resp.aread()
                try:
                    errors = resp.json().get("errors")
                except ValueError:
                    errors = None
                raise ApiError.from_errors(errors, f"download failed ({resp.status_code})")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError("too large for the browser", "TOO_LARGE")
                chunks.append(chunk)
            disposition = resp.headers.get("content-disposition", "")
            name = (
                disposition.split("filename=", 1)[-1].strip('"')
                if "filename=" in disposition
                else ""
            )
            return b"".join(chunks), name
    except (httpx.HTTPError, OSError) as exc:
        raise ApiError(UNREACHABLE, "UNAVAILABLE") from exc
