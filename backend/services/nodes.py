"""The Swarm's nodes for the operator (issue 16), over Pomegranate's node rpcs: list, the join
command, drain, activate, remove. The caller is checked first (backend/api/operator.py); here
the node reference is validated. Pomegranate's answers become domain errors in the client
(backend/rpc/pomegranate_client.py: the gRPC edge)."""

from __future__ import annotations

import re

from backend.errors import ValidationFailed
from backend.rpc import pomegranate_types as t
from backend.rpc.pomegranate_client import PomegranateClient

# A Swarm node id (25 lowercase alphanumerics) or a hostname (RFC 1123 labels).
NODE_REF = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
# Draining waits for Swarm to move the tasks (Pomegranate's own bound is 120 s).
DRAIN_DEADLINE = 180


def check_node_ref(ref: str) -> str:
    if not NODE_REF.fullmatch(ref):
        raise ValidationFailed("give a node's id or hostname (see `paastech nodes`)", field="node")
    return ref


async def list_nodes(pomegranate: PomegranateClient) -> list[t.Node]:
    return await pomegranate.list_nodes()


async def join_command(pomegranate: PomegranateClient) -> str:
    return await pomegranate.node_join_command()


async def drain(pomegranate: PomegranateClient, ref: str) -> t.Node:
    return await pomegranate.drain_node(check_node_ref(ref), DRAIN_DEADLINE)


async def activate(pomegranate: PomegranateClient, ref: str) -> t.Node:
    return await pomegranate.activate_node(check_node_ref(ref))


async def remove(pomegranate: PomegranateClient, ref: str) -> None:
    await pomegranate.remove_node(check_node_ref(ref))
