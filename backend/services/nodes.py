"""The Swarm's nodes for the operator (issue 16), over Pomegranate's node rpcs: list, the join
command, drain, activate, remove. The caller is checked first (backend/api/operator.py); here
the node reference is validated and Pomegranate's answers become domain errors."""

from __future__ import annotations

import re

import grpc

from backend.errors import Conflict, NotFound, Unavailable, ValidationFailed
from backend.rpc import pomegranate_pb2 as pb
from backend.rpc.auth import call_metadata
from backend.rpc.pomegranate_client import PomegranateClient

# A Swarm node id (25 lowercase alphanumerics) or a hostname (RFC 1123 labels).
NODE_REF = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
# Draining waits for Swarm to move the tasks (Pomegranate's own bound is 120 s).
DRAIN_DEADLINE = 180


def check_node_ref(ref: str) -> str:
    if not NODE_REF.fullmatch(ref):
        raise ValidationFailed("give a node's id or hostname (see `paastech nodes`)", field="node")
    return ref


async def _call(
    pomegranate: PomegranateClient, method: str, request: object, deadline: float = 60
) -> object:
    try:
        return await getattr(pomegranate.stub, method)(
            request, metadata=call_metadata(), timeout=deadline
        )
    except grpc.aio.AioRpcError as exc:
        code, details = exc.code(), exc.details() or ""
        if code == grpc.StatusCode.NOT_FOUND:
            raise NotFound(details, field="node") from None
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            raise ValidationFailed(details, field="node") from None
        if code == grpc.StatusCode.FAILED_PRECONDITION and isinstance(request, pb.NodeRef):
            raise Conflict(details, field="node") from None
        if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INTERNAL):
            raise Unavailable(details) from None
        raise Unavailable(
            f"the deployment manager is not reachable ({code.name.lower()})"
        ) from None


async def list_nodes(pomegranate: PomegranateClient) -> list[pb.Node]:
    reply = await _call(pomegranate, "ListNodes", pb.Empty())
    return list(reply.nodes)  # type: ignore[attr-defined]


async def join_command(pomegranate: PomegranateClient) -> str:
    reply = await _call(pomegranate, "NodeJoinCommand", pb.Empty())
    return str(reply.command)  # type: ignore[attr-defined]


async def drain(pomegranate: PomegranateClient, ref: str) -> pb.Node:
    ref = check_node_ref(ref)
    return await _call(pomegranate, "DrainNode", pb.NodeRef(node=ref), DRAIN_DEADLINE)  # type: ignore[return-value]


async def activate(pomegranate: PomegranateClient, ref: str) -> pb.Node:
    ref = check_node_ref(ref)
    return await _call(pomegranate, "ActivateNode", pb.NodeRef(node=ref))  # type: ignore[return-value]


async def remove(pomegranate: PomegranateClient, ref: str) -> None:
    ref = check_node_ref(ref)
    await _call(pomegranate, "RemoveNode", pb.NodeRef(node=ref))
