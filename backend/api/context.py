"""Per-request context: who is calling, with which token, from where."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.types import Info

from backend.api.loaders import Loaders
from backend.db.models import ApiToken, Client
from backend.errors import Unauthenticated


@dataclass
class Context:
    request: Request | WebSocket
    remote_addr: str
    client: Client | None = None
    token: ApiToken | None = None
    bad_token: bool = False  # a token was sent but is unknown, expired or revoked
    connection_params: dict[str, object] = field(default_factory=dict)
    loaders: Loaders = field(default_factory=Loaders)
    subscriptions: int = 0  # live subscriptions on this websocket connection
    watcher: asyncio.Task[None] | None = None  # closes the websocket when its token goes (app.py)


def bearer_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_client(info: Info) -> Client:
    ctx: Context = info.context
    if ctx.client is None:
        if ctx.bad_token:
            raise Unauthenticated("your token is invalid, expired or revoked; log in again")
        raise Unauthenticated("log in first: send 'Authorization: Bearer <token>'")
    return ctx.client


def require_token(info: Info) -> ApiToken:
    require_client(info)
    token: ApiToken | None = info.context.token
    assert token is not None
    return token
