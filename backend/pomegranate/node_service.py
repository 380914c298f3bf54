"""Pomegranate's node rpcs (issue 16): the Swarm's nodes over gRPC, mixed into
PomegranateService. Only the Swarm runtime has nodes; on one engine each rpc answers
FAILED_PRECONDITION. Who may call them is the API's check (the operator token)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc
from aiodocker.exceptions import DockerError

from backend.pomegranate.runtime import Runtime
from backend.pomegranate.swarm_nodes import NodeError, NodeInfo, NodeNotFound, SwarmNodes
from backend.rpc import pomegranate_pb2 as pb
from backend.rpc.servicer import ServicerContext
from backend.settings import Settings

T = TypeVar("T")

NODE_REF_MAX = 128  # a node id is 25 characters, a hostname at most 253: refuse anything odd


def node_message(node: NodeInfo) -> pb.Node:
    return pb.Node(
        id=node.id,
        hostname=node.hostname,
        role=node.role,
        state=node.state,
        availability=node.availability,
        address=node.address,
        leader=node.leader,
        tasks=node.tasks,
        nano_cpus=node.nano_cpus,
        memory_bytes=node.memory_bytes,
        engine_version=node.engine_version,
    )


class NodeRpcs:
    runtime: Runtime  # set by PomegranateService
    settings: Settings

    async def _nodes(self, context: ServicerContext) -> SwarmNodes:
        from backend.pomegranate.swarm_runtime import SwarmRuntime

        if not isinstance(self.runtime, SwarmRuntime):
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "the platform runs on one Docker engine: there are no nodes (runtime=swarm)",
            )
        return SwarmNodes(self.runtime.manager, self.settings.instance)

    async def _ref(self, request: pb.NodeRef, context: ServicerContext) -> str:
        ref = request.node.strip()
        if not ref or len(ref) > NODE_REF_MAX or not ref.isprintable():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "give a node id or hostname")
        return ref

    async def _call(self, context: ServicerContext, operation: Awaitable[T]) -> T:
        try:
            return await operation
        except NodeNotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except NodeError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except DockerError as exc:  # the manager refused or is unreachable: say so
            await context.abort(grpc.StatusCode.INTERNAL, f"swarm manager: {exc.message}")

    async def ListNodes(self, request: pb.Empty, context: ServicerContext) -> pb.NodeList:
        nodes = await self._nodes(context)
        found = await self._call(context, nodes.list())
        return pb.NodeList(nodes=[node_message(n) for n in found])

    async def NodeJoinCommand(self, request: pb.Empty, context: ServicerContext) -> pb.JoinCommand:
        nodes = await self._nodes(context)
        return pb.JoinCommand(command=await self._call(context, nodes.join_command()))

    async def DrainNode(self, request: pb.NodeRef, context: ServicerContext) -> pb.Node:
        nodes = await self._nodes(context)
        ref = await self._ref(request, context)
        return node_message(await self._call(context, nodes.drain(ref)))

    async def ActivateNode(self, request: pb.NodeRef, context: ServicerContext) -> pb.Node:
        nodes = await self._nodes(context)
        ref = await self._ref(request, context)
        return node_message(await self._call(context, nodes.activate(ref)))

    async def RemoveNode(self, request: pb.NodeRef, context: ServicerContext) -> pb.Empty:
        nodes = await self._nodes(context)
        ref = await self._ref(request, context)
        await self._call(context, nodes.remove(ref))
        return pb.Empty()
