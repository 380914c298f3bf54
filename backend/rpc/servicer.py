"""The context type of our gRPC servicer methods.

grpc's ServicerContext is generic in the call's request and response messages, which each
method's own signature already states; the methods use the context only to abort or read
metadata, so one alias serves them all."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

ServicerContext: TypeAlias = grpc.aio.ServicerContext[Any, Any]
