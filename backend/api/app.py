"""The API process: Starlette app serving GraphQL over HTTP and websockets at /graphql."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from backend import routing, security
from backend.api.backup_download import download_backup
from backend.api.context import Context, bearer_from_header
from backend.api.internal import start_internal_server
from backend.api.run_ws import run_endpoint
from backend.api.schema import build_schema
from backend.db.config import (
    DATABASE_UNAVAILABLE_MESSAGE,
    close_db,
    database_unavailable,
    init_db,
)
from backend.db.models import ApiToken
from backend.errors import DISK_FULL_MESSAGE, is_disk_full
from backend.events import get_bus, token_topic
from backend.metrics.collector import MetricsCollector, set_collector
from backend.metrics.prometheus import metrics_endpoint
from backend.metrics.traefik import TraefikScraper
from backend.rpc.pomegranate_client import PomegranateClient
from backend.services import accounts, activity
from backend.services.applications.deployer import Deployer, set_deployer
from backend.settings import Settings, get_settings

log = logging.getLogger("paastech.api")


class PaasGraphQL(GraphQL[Context, None]):
    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors raised before execution (syntax, token limit) bypass schema extensions:
        # give them a code here so every error a caller sees has one.
        response = await super().process_result(request, result)
        for error in response.get("errors") or []:
            if isinstance(error, dict):  # each is a formatted error (a dict)
                error.setdefault("extensions", {}).setdefault("code", "BAD_REQUEST")
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        ctx = Context(request=request, remote_addr=client_address(request))
        await _authenticate(ctx, bearer_from_header(request.headers.get("authorization")))
        return ctx

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        params = context.connection_params or {}
        token = params.get("token") if isinstance(params, dict) else None
        if not token and isinstance(params, dict):
            token = bearer_from_header(
                str(params.get("Authorization") or params.get("authorization") or "")
            )
        if isinstance(token, str) and token:
            await _authenticate(context, token)
        if context.client is None:
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": "send a valid token in connection_init"}
            )
        assert context.token is not None and isinstance(context.request, WebSocket)
        context.watcher = asyncio.get_running_loop().create_task(
            watch_session(context.request, context.token.id, context.token.expires_at)
        )
        return None


# Web app -> API: the visitor's address, vouched for by the key derived for that purpose.
CLIENT_ADDRESS_HEADER = "x-paastech-client-address"
FORWARD_KEY_HEADER = "x-paastech-forward-key"
SESSION_CHECK_SECONDS = 1.0
SESSION_RECHECK_DB_SECONDS = 30.0
CLOSE_TOKEN_INVALID = 4401


def client_address(request: Request | WebSocket) -> str:
    """The caller's address for rate limits: the peer, or the visitor the web app forwards.

    The forwarded address is trusted only with the web-forwarding key (derived from the master
    key, held by the web app): anyone else sending the header is still counted by their own
    address."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get(CLIENT_ADDRESS_HEADER)
    key = request.headers.get(FORWARD_KEY_HEADER, "")
    if not forwarded or not key:
        return peer
    if not hmac.compare_digest(key.encode(), security.web_forwarding_secret().encode()):
        return peer
    try:
        return str(ipaddress.ip_address(forwarded.strip()))
    except ValueError:
        return peer


async def watch_session(ws: WebSocket, token_id: int, expires_at: datetime | None) -> None:
    """Close the websocket within a second once its token is revoked or expires.

    Revocations arrive on the bus; the database is re-read now and then as well, for tokens
    removed some other way (another API process, an operator)."""
    revoked = asyncio.Event()
    reason = "your token was revoked; log in again"

    async def listen() -> None:
        async with get_bus().subscribe(token_topic(token_id)) as events:
            async for _ in events:
                revoked.set()
                return

    listener = asyncio.create_task(listen())
    last_db_check = time.monotonic()
    try:
        # Either side closing ends the watch (the client going away sets client_state).
        while WebSocketState.CONNECTED == ws.application_state == ws.client_state:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(revoked.wait(), SESSION_CHECK_SECONDS)
            if revoked.is_set():
                break
            if expires_at is not None and datetime.now(UTC) >= expires_at:
                reason = "your token expired; log in again"
                break
            if time.monotonic() - last_db_check > SESSION_RECHECK_DB_SECONDS:
                last_db_check = time.monotonic()
                if not await ApiToken.exists(id=token_id):
                    break
        else:
            return  # the socket closed by itself
        log.info("closing a websocket of token %d: %s", token_id, reason)
        with contextlib.suppress(Exception):
            await ws.close(code=CLOSE_TOKEN_INVALID, reason=reason)
    finally:
        listener.cancel()


async def _authenticate(ctx: Context, token: str | None) -> None:
    if token:
        found = await accounts.authenticate(token)
        if found is None:
            ctx.bad_token = True
            ctx.client = ctx.token = None
        else:
            ctx.client, ctx.token = found
            ctx.bad_token = False
    _set_actor(ctx)


def _set_actor(ctx: Context) -> None:
    """Who acts in this request, for the activity feed (issue 18)."""
    headers = ctx.request.headers
    activity.set_actor(
        activity.Actor(
            client_id=ctx.client.id if ctx.client else None,
            token_id=ctx.token.id if ctx.token else None,
            token_name=ctx.token.name if ctx.token else "",
            source=activity.source_of(headers.get(activity.SOURCE_HEADER)),
            device=activity.device_of(
                headers.get(activity.DEVICE_HEADER) or headers.get("user-agent")
            ),
        )
    )


class DatabaseErrors:
    """A database outage or a full disk outside the resolvers (authentication in the context
    getter) answers 503 with the code UNAVAILABLE, as inside them, never a bare 500 (issue 20)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if is_disk_full(exc):
                message = DISK_FULL_MESSAGE
            elif database_unavailable(exc):
                message = DATABASE_UNAVAILABLE_MESSAGE
            else:
                raise
            log.warning("%s: %s", message, exc)
            body = {"errors": [{"message": message, "extensions": {"code": "UNAVAILABLE"}}]}
            await JSONResponse(body, status_code=503)(scope, receive, send)


class BodySizeLimit:
    """Reject request bodies larger than the limit, declared or streamed, with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _too_large(self.max_bytes)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": f"request body over {limit} bytes",
                    "extensions": {"code": "BAD_REQUEST"},
                }
            ]
        },
        status_code=413,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One exit stack: when a step fails (a taken port, an unmigrated database), what started
        # before it is stopped too, so the process exits instead of hanging on the database
        # thread and the deployer's tasks after uvicorn's "Application startup failed".
        async with contextlib.AsyncExitStack() as stack:
            await init_db(settings)
            stack.push_async_callback(close_db)
            # The hash logins of unknown accounts are checked against: made now, off the loop.
            await asyncio.to_thread(security.dummy_hash)
            # Custom domains -> ingress/Traefik (backend/routing.py).
            await routing.publish(settings)
            deployer = Deployer(PomegranateClient(settings), settings)
            set_deployer(deployer)
            stack.callback(set_deployer, None)
            stack.push_async_callback(deployer.stop)
            await deployer.start()
            collector = MetricsCollector(deployer.pomegranate, settings)  # issue 18
            set_collector(collector)
            stack.callback(set_collector, None)
            stack.push_async_callback(collector.stop)
            await collector.start()
            # Production behind Traefik (backend/metrics/traefik.py).
            if settings.traefik_metrics_url:
                scraper = TraefikScraper(
                    settings.traefik_metrics_url,
                    collector.record_windows,
                    settings.metrics_sample_seconds,
                )
                stack.push_async_callback(scraper.stop)
                await scraper.start()
            internal = await start_internal_server(settings)
            stack.push_async_callback(internal.stop, 2)
            yield

    graphql = PaasGraphQL(
        build_schema(settings),
        graphql_ide="graphiql" if settings.development else None,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        keep_alive=True,
        keep_alive_interval=15,
    )

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            WebSocketRoute("/run", run_endpoint),  # one-off commands (issue 14, run_ws.py)
            Route("/healthz", healthz),
            # Issue 18: the platform's own metrics for operators (backend/metrics/prometheus.py).
            Route("/metrics", metrics_endpoint(settings), methods=["GET"]),
            # Add-on backup files (issue 15), authorised by the bearer token like /graphql.
            Route("/addon-backups/{backup_id}", download_backup, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(DatabaseErrors)
    return app
