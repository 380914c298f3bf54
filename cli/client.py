"""The GraphQL client of the CLI: gql over HTTP (httpx) and websockets, errors as exit codes.

Every operation the CLI sends is a named operation in `cli/operations/<Name>.graphql`.

gql, graphql-core and httpx are imported on the first request, not with this module: they are
about half of the CLI's start-up (0.2-0.5 s), which `--help`, completion and every command that
fails before asking the API would otherwise pay (tests/cli/test_startup.py keeps it so).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gql.transport.exceptions import TransportQueryError

OPERATIONS_DIR = Path(__file__).resolve().parent / "operations"
# gql logs its own housekeeping ("Timer close_timeout fired in wait_closed") as warnings; the CLI
# reports what matters itself, as `error:` lines.
logging.getLogger("gql").setLevel(logging.CRITICAL)
logging.getLogger("websockets").setLevel(logging.CRITICAL)

# Exit codes. Usage errors exit 2 (click's own code for them).
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4

EXIT_BY_CODE = {"UNAUTHENTICATED": EXIT_AUTH, "FORBIDDEN": EXIT_AUTH, "NOT_FOUND": EXIT_NOT_FOUND}


class CliError(Exception):
    """A failure shown as one `error: <message>` line on stderr, with an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code


class ApiError(CliError):
    """A GraphQL error from the API, with its `extensions`."""

    def __init__(self, error: dict[str, Any]) -> None:
        ext = error.get("extensions") or {}
        code = ext.get("code") if isinstance(ext, dict) else None
        message = str(error.get("message") or "request failed")
        super().__init__(message, EXIT_BY_CODE.get(str(code), EXIT_FAILURE), code)
        self.extensions = ext if isinstance(ext, dict) else {}

    @property
    def field(self) -> str | None:
        return self.extensions.get("field")


class NotLoggedIn(CliError):
    def __init__(self) -> None:
        super().__init__(
            "not logged in: run `paastech login` (or set PAASTECH_TOKEN)",
            EXIT_AUTH,
            "UNAUTHENTICATED",
        )


@cache
def operation(name: str) -> str:
    """The text of `cli/operations/<name>.graphql`."""
    return (OPERATIONS_DIR / f"{name}.graphql").read_text(encoding="utf-8")


def operation_names() -> list[str]:
    return sorted(p.stem for p in OPERATIONS_DIR.glob("*.graphql"))


def _ws_url(url: str) -> str:
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    return url


def asyncio_only() -> None:
    """For the `paastech` program (App.__call__), not for a process that imports this module
    (a test using selenium needs trio). httpcore imports trio whenever it is installed (selenium
    brings it to a shared environment), 0.1 s of CPU per command; the CLI runs on asyncio only,
    so the import is answered "not installed" (httpcore then uses anyio, as without trio)."""
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]  # None: what import treats as absent


def tls_options(url: str) -> dict[str, Any]:
    """httpx options for ``url``. A plain-HTTP URL reached directly never does TLS: it gets a
    context that trusts no CA (a TLS handshake through it would fail) instead of httpx's default,
    which loads the whole CA bundle, 0.15 s of CPU per command. Through a proxy (which may speak
    TLS) the default stays."""
    import urllib.request

    if url.startswith("http://") and not urllib.request.getproxies():
        import ssl

        return {"verify": ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)}
    return {}


def _query_error(exc: TransportQueryError) -> ApiError:
    errors = exc.errors or [{"message": str(exc)}]
    return ApiError(errors[0])


def _version() -> str:
    try:
        return version("paastech")
    except PackageNotFoundError:
        return "dev"


CLIENT_HEADERS = {"X-PaaSTech-Source": "cli", "User-Agent": f"paastech-cli/{_version()}"}


class Api:
    """One API endpoint and (maybe) a token."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 60,
        operator_token: str | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self.operator_token = operator_token  # the operator's node API (issue 16)

    def with_token(self, token: str | None) -> Api:
        return Api(self.url, token, self.timeout)

    def _unreachable(self, exc: BaseException) -> CliError:
        reason = str(exc) or type(exc).__name__
        return CliError(f"cannot reach the PaaSTech API at {self.url}: {reason}", EXIT_FAILURE)

    def _headers(self) -> dict[str, str]:
        # Who asks: the activity feed records "cli" as the source, sessions the program.
        headers = dict(CLIENT_HEADERS)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.operator_token:
            headers["X-PaaSTech-Operator-Token"] = self.operator_token
        return headers

    async def execute(self, name: str, /, **variables: Any) -> dict[str, Any]:
        """Run a query or mutation from `operations/<name>.graphql`; its `data`."""
        import httpx
        from gql import Client, GraphQLRequest
        from gql.transport.exceptions import (
            TransportClosed,
            TransportConnectionFailed,
            TransportProtocolError,
            TransportQueryError,
            TransportServerError,
        )
        from gql.transport.httpx import HTTPXAsyncTransport

        headers = self._headers()
        transport = HTTPXAsyncTransport(
            url=self.url, headers=headers, timeout=self.timeout, **tls_options(self.url)
        )
        # gql's own execute_timeout (10 s by default) would cut every request shorter than ours.
        client = Client(
            transport=transport, fetch_schema_from_transport=False, execute_timeout=self.timeout
        )
        request = GraphQLRequest(operation(name), variable_values=variables, operation_name=name)
        try:
            async with client as session:
                result: dict[str, Any] = await session.execute(request)
                return result
        except TransportQueryError as exc:
            raise _query_error(exc) from None
        except TransportServerError as exc:
            # httpx's text ends with an MDN link: keep only its first line.
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise CliError(
                f"the API at {self.url} answered HTTP {exc.code}" + (f": {first}" if first else ""),
                EXIT_FAILURE,
            ) from None
        except (TransportConnectionFailed, TransportClosed, httpx.TransportError, OSError) as exc:
            raise self._unreachable(exc) from None
        except TransportProtocolError as exc:
            raise CliError(f"unexpected answer from {self.url}: {exc}", EXIT_FAILURE) from None

    async def _why_closed(self, exc: BaseException) -> ConnectionLost:
        """The server closes the websocket on a bad token (4403) and gql only reports that it
        closed: ask over HTTP, to raise the API's own error (UNAUTHENTICATED: exit 3)."""
        try:
            await self.execute("Me")
        except CliError as probe:
            if probe.exit_code == EXIT_AUTH:
                raise probe from None
        return ConnectionLost(f"the live connection to {self.url} was lost ({exc})")

    @asynccontextmanager
    async def subscribe(
        self, name: str, /, **variables: Any
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Open a subscription from `operations/<name>.graphql`; yields its event iterator.

        GraphQL errors are raised as ApiError; a connection that cannot be opened or drops as
        ConnectionLost (callers may reconnect); a rejected token as CliError with exit 3.
        """
        from gql import Client, GraphQLRequest
        from gql.transport.exceptions import TransportError, TransportQueryError
        from gql.transport.websockets import WebsocketsTransport

        transport = WebsocketsTransport(
            url=_ws_url(self.url),
            init_payload={"token": self.token} if self.token else {},
            headers=dict(CLIENT_HEADERS),
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            connect_timeout=10,
            ack_timeout=10,
            close_timeout=2,
            connect_args={"ping_interval": 5, "ping_timeout": 10},
        )
        client = Client(transport=transport, fetch_schema_from_transport=False)
        request = GraphQLRequest(operation(name), variable_values=variables, operation_name=name)
        try:
            session = await client.connect_async(reconnecting=False)  # type: ignore[no-untyped-call]  # gql leaves it unannotated
        except TransportQueryError as exc:
            raise _query_error(exc) from None
        except (TimeoutError, TransportError, OSError) as exc:
            raise await self._why_closed(exc) from None
        events = session.subscribe(request)
        try:
            yield self._translate(events)
        finally:
            # Close the operation before the connection so gql sends `complete` at once.
            with contextlib.suppress(Exception):
                await events.aclose()
            with contextlib.suppress(Exception):
                await client.close_async()  # type: ignore[no-untyped-call]  # idem

    async def _translate(
        self, events: AsyncIterator[dict[str, Any]]
    ) -> AsyncIterator[dict[str, Any]]:
        from gql.transport.exceptions import TransportError, TransportQueryError

        try:
            async for event in events:
                yield event
        except TransportQueryError as exc:
            raise _query_error(exc) from None
        except (TransportError, OSError) as exc:
            raise await self._why_closed(exc) from None


class ConnectionLost(CliError):
    """The websocket dropped (or could not be opened); a follower may reconnect."""

    def __init__(self, message: str = "the connection to the API was lost") -> None:
        super().__init__(message, EXIT_FAILURE, "UNAVAILABLE")
