"""The Swarm's nodes for the operator (issue 16), over Pomegranate's node rpcs: list, the join
command, drain, activate, remove. The caller is checked first (backend/api/operator.py); here
the node reference is validated and Pomegranate's answers become domain errors."""

from __future__ import annotations

import re
from typing import TypeVar

import grpc

from backend.errors import Conflict, NotFound, Unavailable, ValidationFailed
from backend.rpc import pomegranate_pb2 as pb
from backend.rpc.auth import call_metadata
from backend.rpc.pomegranate_client import PomegranateClient

# A Swarm node id (25 lowercase alphanumerics) or a hostname (RFC 1123 labels).
NODE_REF = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
# Draining waits for Swarm to move the tasks (Pomegranate's own bound is 120 s).
DRAIN_DEADLINE = 180

Req = TypeVar("Req")
Reply = TypeVar("Reply")


def check_node_ref(ref: str) -> str:
    if not NODE_REF.fullmatch(ref):
        raise ValidationFailed("give a node's id or hostname (see `paastech nodes`)", field="node")
    return ref


async def _call(
    method: grpc.aio.UnaryUnaryMultiCallable[Req, Reply], request: Req, deadline: float = 60
) -> Reply:
    try:
        return await method(request, metadata=call_metadata(), timeout=deadline)
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
    reply = await _call(pomegranate.stub.ListNodes, pb.Empty())
    return list(reply.nodes)


async def join_command(pomegranate: PomegranateClient) -> str:
    reply = await _call(pomegranate.stub.NodeJoinCommand, pb.Empty())
    return str(reply.command)


async def drain(pomegranate: PomegranateClient, ref: str) -> pb.Node:
    ref = check_node_ref(ref)
    return await _call(pomegranate.stub.DrainNode, pb.NodeRef(node=ref), DRAIN_DEADLINE)


async def activate(pomegranate: PomegranateClient, ref: str) -> pb.Node:
    ref = check_node_ref(ref)
    return await _call(pomegranate.stub.ActivateNode, pb.NodeRef(node=ref))


async def remove(pomegranate: PomegranateClient, ref: str) -> None:
    ref = check_node_ref(ref)
    await _call(pomegranate.stub.RemoveNode, pb.NodeRef(node=ref))
