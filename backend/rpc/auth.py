"""The shared secret of internal gRPC calls: one interceptor for servers, one helper for clients."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from backend.security import internal_secret

METADATA_KEY = "x-paastech-secret"


def call_metadata() -> tuple[tuple[str, str], ...]:
    return ((METADATA_KEY, internal_secret()),)


class SharedSecretInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call that does not carry the platform's shared secret."""

    def __init__(self, secret: str | None = None) -> None:
        self._secret = (secret or internal_secret()).encode()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        sent = dict(details.invocation_metadata or ()).get(METADATA_KEY, "")
        if isinstance(sent, str) and hmac.compare_digest(sent.encode(), self._secret):
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            return None
        # Keep the method's shape so the client sees a clean UNAUTHENTICATED status.
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(_deny_stream_stream)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(_deny_unary_like)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(_deny_stream_stream)
        return grpc.unary_unary_rpc_method_handler(_deny_unary_like)


async def _deny_unary_like(request: object, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong shared secret")


async def _deny_stream_stream(
    request: object, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[None]:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong shared secret")
    yield  # pragma: no cover - makes this an async generator, as streaming handlers must be
