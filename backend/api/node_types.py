"""GraphQL type of a Swarm node (issue 16), for the operator's node API."""

from __future__ import annotations

import strawberry

from backend.rpc import pomegranate_types as t


@strawberry.type(name="Node")
class NodeType:
    id: strawberry.ID
    hostname: str
    role: str = strawberry.field(description="manager or worker.")
    state: str = strawberry.field(description="ready, down, unknown or disconnected.")
    availability: str = strawberry.field(
        description="active (takes tasks), pause, or drain (its tasks moved elsewhere)."
    )
    address: str
    leader: bool = strawberry.field(description="The Raft leader among the managers.")
    tasks: int = strawberry.field(description="Running tasks of the platform's apps on it.")
    cpus: float
    memory_bytes: float = strawberry.field(description="Bytes (a Float: can exceed 2 GiB).")
    engine_version: str

    @classmethod
    def of(cls, node: t.Node) -> NodeType:
        return cls(
            id=strawberry.ID(node.id),
            hostname=node.hostname,
            role=node.role,
            state=node.state,
            availability=node.availability,
            address=node.address,
            leader=node.leader,
            tasks=node.tasks,
            cpus=node.nano_cpus / 1e9,
            memory_bytes=float(node.memory_bytes),
            engine_version=node.engine_version,
        )
