"""The API process: Starlette app serving GraphQL over HTTP and websockets at /graphql."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from backend import routing
from backend.api.context import Context, bearer_from_header
from backend.api.internal import start_internal_server
from backend.api.schema import build_schema
from backend.db.config import close_db, init_db
from backend.rpc.pomegranate_client import PomegranateClient
from backend.services import accounts
from backend.services.deployments import Deployer, set_deployer
from backend.settings import Settings, get_settings

log = logging.getLogger("paastech.api")


class PaasGraphQL(GraphQL):
    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors raised before execution (syntax, token limit) bypass schema extensions:
        # give them a code here so every error a caller sees has one.
        response = await super().process_result(request, result)
        for error in response.get("errors") or []:
            error.setdefault("extensions", {}).setdefault("code", "BAD_REQUEST")
        return response

    async def get_context(self, request: Request | WebSocket, response: object = None) -> Context:
        remote = request.client.host if request.client else "unknown"
        ctx = Context(request=request, remote_addr=remote)
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
        return None


async def _authenticate(ctx: Context, token: str | None) -> None:
    if not token:
        return
    found = await accounts.authenticate(token)
    if found is None:
        ctx.bad_token = True
        ctx.client = ctx.token = None
    else:
        ctx.client, ctx.token = found
        ctx.bad_token = False


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

        async def limited_receive() -> dict:
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
        await init_db(settings)
        await routing.publish(settings)  # custom domains -> ingress/Traefik (backend/routing.py)
        deployer = Deployer(PomegranateClient(settings), settings)
        set_deployer(deployer)
        await deployer.start()
        internal = await start_internal_server(settings)
        try:
            yield
        finally:
            await internal.stop(grace=2)
            await deployer.stop()
            set_deployer(None)
            await close_db()

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
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    return app
