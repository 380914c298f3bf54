"""Property-based fuzzing of every query, mutation and subscription of the live schema
(hypothesis-graphql), as an authenticated Client against a real API process on SQLite and
PostgreSQL, with no Pomegranate running (deploying mutations must answer with a coded error).
The tests live here once; tests/integration/test_fuzz_sqlite.py and test_fuzz_postgres.py run
them on one database each, so `make test` runs the two on different workers.

Pass means: no HTTP 5xx, no INTERNAL, no traceback, every error has a code, the API still
answers afterwards, and a second Client's data is unchanged at the end.

`make test` runs PAASTECH_FUZZ_EXAMPLES (default 500) operations and a quarter as many
subscriptions per database (1,250 in all: a few minutes on 2 cores); `make fuzz` runs 25,000
operations and 25,000 subscriptions per database.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from graphql import GraphQLSchema, build_schema, print_ast
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import from_schema
from websockets.sync.client import ClientConnection, connect

from backend.api.schema import build_schema as build_live_schema
from tests.conftest import PASSWORD
from tests.support.databases import database
from tests.support.gqlclient import SIGNUP
from tests.support.servers import api_server
from tests.support.tls import ssl_context

EXAMPLES = int(os.environ.get("PAASTECH_FUZZ_EXAMPLES", "500"))
# make fuzz asks for as many subscriptions as operations; make test for a quarter.
SUBSCRIPTION_EXAMPLES = int(os.environ.get("PAASTECH_FUZZ_SUBSCRIPTIONS", max(1, EXAMPLES // 4)))
TIMEOUT = int(os.environ.get("PAASTECH_FUZZ_TIMEOUT", "900"))

VICTIM_STATE = """query($p: String!) { me { username email }
  project(name: $p) { name envVars { key value } domains { hostname verified }
    settings { port healthCheckPath deployBranch memoryMb cpu replicas { processType replicas } } }
  sshKeys { fingerprint } apiTokens { name } }"""


@dataclass
class Target:
    url: str
    token: str
    username: str
    victim_token: str
    victim_project: str
    victim_before: dict


def gql(url: str, token: str, query: str, **variables: object) -> httpx.Response:
    return httpx.post(
        url,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=30,
        verify=ssl_context(),  # one CA-bundle load per process, not per generated operation
    )


def data(url: str, token: str, query: str, **variables: object) -> dict:
    body = gql(url, token, query, **variables).json()
    assert not body.get("errors"), body
    return body["data"]


def signup(url: str) -> tuple[str, str]:
    name = f"f{secrets.token_hex(4)}"
    out = data(url, "", SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD)
    return name, out["signup"]["token"]


def target_fixture(backend: str) -> Callable[..., Iterator[Target]]:
    """The module's fuzzing target: an API process on ``backend`` with a victim Client."""

    @pytest.fixture(scope="module")
    def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
        yield from _target(backend, tmp_path_factory)

    return target


def _target(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data_dir = tmp_path_factory.mktemp(f"fuzz-{backend}")
    with (
        database(backend, data_dir) as db_url,
        # Generated logins fail by the thousand from 127.0.0.1: the fuzzer must still log in.
        api_server(data_dir, db_url, login_max_failures_per_address=10**9) as url,
    ):
        # The victim: a project with env vars, a domain, a key; the fuzzer never gets its token.
        _, victim = signup(url)
        project = f"victim-{secrets.token_hex(3)}"
        data(url, victim, "mutation($p: String!) { createProject(name: $p) { name } }", p=project)
        data(
            url,
            victim,
            'mutation($p: String!) { setEnvVars(project: $p, vars: [{key: "SECRET", '
            'value: "victim-only"}]) { project { name } } }',
            p=project,
        )
        data(
            url,
            victim,
            'mutation($p: String!) { addDomain(project: $p, hostname: "victim.example.test") '
            "{ name } }",
            p=project,
        )
        before = data(url, victim, VICTIM_STATE, p=project)
        username, token = signup(url)
        data(url, token, 'mutation { createProject(name: "fuzzer-own") { name } }')
        yield Target(url, token, username, victim, project, before)
        # The API still answers, and nothing of the victim's changed.
        assert data(url, victim, "{ __typename }") == {"__typename": "Query"}
        assert data(url, victim, VICTIM_STATE, p=project) == before
        # Nothing unexpected on the server's side either (INTERNAL errors are logged there).
        log = "".join(p.read_text(errors="replace") for p in data_dir.glob("api-*.log"))
        assert "internal error at" not in log
        assert "Exception in ASGI application" not in log


def sdl() -> str:
    return build_live_schema().as_str()


def check_errors(errors: list[dict], text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        assert code, error
        assert code != "INTERNAL", error


def still_logged_in(target: Target) -> None:
    """A generated logout/revokeApiToken may end the fuzzer's own session: log in again."""
    body = gql(target.url, target.token, "{ me { username } }").json()
    if body.get("errors"):
        login = (
            """mutation($l: String!, $p: String!) { login(login: $l, password: $p) { token } }"""
        )
        target.token = data(target.url, "", login, l=target.username, p=PASSWORD)["login"]["token"]


OPERATIONS = from_schema(sdl(), allow_x00=True)


@pytest.mark.timeout(TIMEOUT)
def test_fuzz_queries_and_mutations(target: Target) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(query=OPERATIONS)
    def run(query: str) -> None:
        resp = gql(target.url, target.token, query)
        assert resp.status_code < 500, resp.text
        body = resp.json()
        errors = body.get("errors") or []
        check_errors(errors, resp.text)
        if any(e["extensions"]["code"] == "UNAUTHENTICATED" for e in errors):
            still_logged_in(target)

    run()


def subscription_schema() -> GraphQLSchema:
    """The Subscription type as a query root: hypothesis-graphql builds its documents, then
    they are sent as subscriptions."""
    schema = build_schema(sdl())
    assert schema.subscription_type is not None
    return GraphQLSchema(query=schema.subscription_type, types=list(schema.type_map.values()))


def as_subscription(document: object) -> str:
    text = print_ast(document)  # type: ignore[arg-type]
    return "subscription " + text.removeprefix("query ").lstrip()


SUBSCRIPTIONS = from_schema(subscription_schema(), print_ast=as_subscription)


def first_reply(ws: ClientConnection, op_id: str) -> dict | None:
    """The operation's first message, or None if it waits for events (a live stream)."""
    try:
        while True:
            message = json.loads(ws.recv(timeout=3))
            if message.get("id") == op_id:
                return message
    except TimeoutError:
        return None


@pytest.mark.timeout(TIMEOUT)
def test_fuzz_subscriptions(target: Target) -> None:
    still_logged_in(target)
    ws_url = target.url.replace("http://", "ws://")
    ids = itertools.count()
    with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": {"token": target.token}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"

        @settings(
            max_examples=SUBSCRIPTION_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(query=SUBSCRIPTIONS)
        def run(query: str) -> None:
            op_id = str(next(ids))
            ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))
            reply = first_reply(ws, op_id)
            if reply is not None:
                if reply["type"] == "error":
                    check_errors(reply["payload"], json.dumps(reply))
                elif reply["type"] == "next":
                    check_errors(reply["payload"].get("errors") or [], json.dumps(reply))
            ws.send(json.dumps({"id": op_id, "type": "complete"}))

        run()
        # The connection is still usable.
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "pong"
