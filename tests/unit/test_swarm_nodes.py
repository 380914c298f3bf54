"""The node API's pure parts (issue 16): a Swarm node as the manager describes it, the join
command, and the node reference the API accepts. The operations run on a real cluster in
tests/integration/test_swarm_runtime.py."""

from __future__ import annotations

import shlex

import pytest

from backend.errors import ValidationFailed
from backend.pomegranate.swarm_nodes import join_command, node_info
from backend.services.nodes import check_node_ref

NODE = {
    "ID": "m0n3tq3xj1kz8yq7d2r5w4v6b",
    "Version": {"Index": 42},
    "Spec": {"Role": "worker", "Availability": "drain"},
    "Description": {
        "Hostname": "pt-sw2",
        "Resources": {"NanoCPUs": 2_000_000_000, "MemoryBytes": 4 * 1024**3},
        "Engine": {"EngineVersion": "26.1.5"},
    },
    "Status": {"State": "ready", "Addr": "10.231.7.12"},
}


def test_a_node_as_the_manager_describes_it():
    info = node_info(NODE, tasks=3)
    assert (info.hostname, info.role, info.state, info.availability) == (
        "pt-sw2",
        "worker",
        "ready",
        "drain",
    )
    assert (info.address, info.tasks, info.nano_cpus) == ("10.231.7.12", 3, 2_000_000_000)
    assert info.memory_bytes == 4 * 1024**3 and info.engine_version == "26.1.5"
    assert info.leader is False
    leader = node_info({**NODE, "ManagerStatus": {"Leader": True, "Addr": "10.231.7.11:2377"}}, 0)
    assert leader.leader is True


def test_a_node_missing_its_description_is_still_listed():
    info = node_info({"ID": "abc"}, tasks=0)
    assert (info.id, info.hostname, info.state, info.nano_cpus) == ("abc", "", "unknown", 0)


def test_the_join_command_quotes_what_the_manager_gave():
    command = join_command("SWMTKN-1-abc", "10.231.7.11:2377")
    assert command == "docker swarm join --token SWMTKN-1-abc 10.231.7.11:2377"
    hostile = join_command("x; rm -rf /", "10.0.0.1:2377")
    assert shlex.split(hostile) == [
        "docker",
        "swarm",
        "join",
        "--token",
        "x; rm -rf /",
        "10.0.0.1:2377",
    ]


@pytest.mark.parametrize("ref", ["pt-sw2", "m0n3tq3xj1kz8yq7d2r5w4v6b", "node-1.example.com"])
def test_node_ids_and_hostnames_are_accepted(ref: str):
    assert check_node_ref(ref) == ref


@pytest.mark.parametrize(
    "ref", ["", "-x", "x-", "a b", "../etc", "x" * 254, "n\u00e9", "a\nb", "ab\n"]
)
def test_anything_else_is_refused_with_its_field(ref: str):
    with pytest.raises(ValidationFailed) as refused:
        check_node_ref(ref)
    assert refused.value.field == "node"
