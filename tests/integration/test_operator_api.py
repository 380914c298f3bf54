"""The operator's node API (issue 16) over GraphQL: only the operator token opens it (a Client's
login never does), a bad node reference is refused with its field, and without a Swarm behind
the API the operator is told so. The Swarm side runs on a real cluster in
tests/integration/test_swarm_runtime.py."""

from __future__ import annotations

import httpx
import pytest

from backend.api.operator import OPERATOR_HEADER
from tests.conftest import OPERATOR_TOKEN, Account, Server

OPERATIONS = [
    "{ nodes { id } }",
    "{ nodeJoinCommand }",
    'mutation { drainNode(node: "worker-1") { id } }',
    'mutation { activateNode(node: "worker-1") { id } }',
    'mutation { removeNode(node: "worker-1") }',
]


def post(
    server: Server, query: str, headers: dict[str, str], variables: dict | None = None
) -> dict:
    body = {"query": query, "variables": variables or {}}
    response = httpx.post(server.url, json=body, headers=headers, timeout=30)
    return response.json()


def code_of(body: dict) -> str:
    assert body.get("data") in (None, {}), body
    return body["errors"][0]["extensions"]["code"]


@pytest.mark.parametrize("query", OPERATIONS)
async def test_only_the_operator_token_opens_the_node_api(
    server: Server, alice: Account, query: str
) -> None:
    assert code_of(post(server, query, {})) == "FORBIDDEN"
    wrong = {OPERATOR_HEADER: OPERATOR_TOKEN[:-2] + "zz"}
    assert code_of(post(server, query, wrong)) == "FORBIDDEN"
    # A logged-in Client's own bearer token is no operator token, in either header.
    token = alice.api.token
    for headers in ({"Authorization": f"Bearer {token}"}, {OPERATOR_HEADER: token}):
        assert code_of(post(server, query, headers)) == "FORBIDDEN"
    # The operator passes the check; this API has no deployment manager to ask.
    assert code_of(post(server, query, {OPERATOR_HEADER: OPERATOR_TOKEN})) == "UNAVAILABLE"


@pytest.mark.parametrize("node", ["", "../x", "a b", "-lead", "x" * 300, "n\u00e9"])
def test_a_bad_node_reference_is_refused_with_its_field(server: Server, node: str) -> None:
    query = "mutation($n: String!) { drainNode(node: $n) { id } }"
    body = post(server, query, {OPERATOR_HEADER: OPERATOR_TOKEN}, {"n": node})
    error = body["errors"][0]
    assert error["extensions"] == {"code": "VALIDATION", "field": "node"}, body
