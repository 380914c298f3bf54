"""projectEvents over graphql-transport-ws, and the abuse limits of the API."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from gql.transport.exceptions import TransportQueryError
from websockets.exceptions import ConnectionClosed

from tests.conftest import Account, Server, unique
from tests.support.gqlclient import SIGNUP, Api
from tests.support.servers import api_server

EVENTS = "subscription($p: String!) { projectEvents(project: $p) { kind project message } }"


async def test_subscription_receives_changes_made_by_another_connection(alice: Account) -> None:
    name = unique("sub")
    await alice.api("mutation($p: String!) { createProject(name: $p) { name } }", p=name)
    other = alice.api  # a separate HTTP connection per call

    async def collect() -> list[dict]:
        seen = []
        async with alice.api.subscribe(EVENTS, p=name) as events:
            async for event in events:
                seen.append(event["projectEvents"])
                if event["projectEvents"]["kind"] == "SUBSCRIBED":
                    subscribed.set()
                if len(seen) == 4:
                    return seen
        return seen

    subscribed = asyncio.Event()
    task = asyncio.create_task(collect())
    await asyncio.wait_for(subscribed.wait(), 10)
    await other(
        'mutation($p: String!) { setEnvVars(project: $p, vars: [{key: "A", value: "1"}]) { project { name } } }',
        p=name,
    )
    await other(
        'mutation($p: String!) { addDomain(project: $p, hostname: "sub.example.com") { name } }',
        p=name,
    )
    await other("mutation($p: String!) { deleteProject(name: $p) { name } }", p=name)
    seen = await asyncio.wait_for(task, 10)
    assert [e["kind"] for e in seen] == [
        "SUBSCRIBED",
        "ENV_CHANGED",
        "DOMAINS_CHANGED",
        "PROJECT_DELETED",
    ]
    assert seen[1]["message"] == "set A"
    assert all(e["project"] == name for e in seen)


async def test_unauthenticated_subscription_is_refused(server: Server) -> None:
    ws_url = server.url.replace("http://", "ws://")
    for payload in ({}, {"token": "pt_not-a-real-token"}, {"token": 42}):
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4403


async def test_subscription_to_unknown_project_is_not_found(alice: Account) -> None:
    with pytest.raises(TransportQueryError) as info:
        async with alice.api.subscribe(EVENTS, p="no-such-project") as events:
            async for _ in events:
                break
    assert info.value.errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_query_depth_limit(tmp_path) -> None:
    # The schema has no cycles today, so the real limit (10) cannot be reached; a server with a
    # limit of 3 proves the limiter is wired in and reports clearly.
    with api_server(tmp_path, max_query_depth=3) as url:
        anon = Api(url)
        signed = await anon(
            SIGNUP, email="deep@example.com", username="deep", password="correct-horse-7"
        )
        api = anon.with_token(signed["signup"]["token"])
        assert await api("{ me { projects { name } } }")
        err = await api.error("{ me { projects { applications { replicas { processType } } } } }")
        assert err.code == "BAD_REQUEST"
        assert "exceeds maximum operation depth of 3" in str(err)


async def test_query_token_limit(alice: Account) -> None:
    query = "{ me { " + " ".join(["username"] * 2100) + " } }"
    err = await alice.api.error(query)
    assert err.code == "BAD_REQUEST"
    assert "token" in str(err).lower()


async def test_alias_limit(alice: Account) -> None:
    query = "{ " + " ".join(f"a{i}: me {{ username }}" for i in range(30)) + " }"
    err = await alice.api.error(query)
    assert err.code == "BAD_REQUEST"


async def test_request_body_size_limit(server: Server) -> None:
    body = '{"query": "{ me { username } }", "variables": {"pad": "' + "x" * 1_100_000 + '"}}'
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            server.url, content=body, headers={"content-type": "application/json"}
        )
        assert resp.status_code == 413
        assert resp.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

        async def chunks():
            for _ in range(12):
                yield b"x" * 100_000

        resp = await http.post(
            server.url, content=chunks(), headers={"content-type": "application/json"}
        )
        assert resp.status_code == 413


async def test_internal_errors_are_masked(server: Server) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            server.url, content=b"{not json", headers={"content-type": "application/json"}
        )
    assert resp.status_code == 400
    assert "Traceback" not in resp.text
