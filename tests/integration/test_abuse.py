"""The API against an anonymous attacker and a hostile tenant (issue 12): login and sign-up
limits by the visitor's address, hashing off the event loop, query cost, subscription caps,
introspection in production, and websockets closed when their token goes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from backend.security import web_forwarding_secret
from tests.conftest import PASSWORD, Account, Server, SignUp, unique
from tests.support.gqlclient import SIGNUP, Api
from tests.support.platform import TEST_SECRET
from tests.support.servers import api_server

LOGIN = """mutation($login: String!, $password: String!) {
  login(login: $login, password: $password) { token } }"""
CREATE = "mutation($p: String!) { createProject(name: $p) { name } }"
EVENTS = "subscription($p: String!) { projectEvents(project: $p) { kind } }"
FORWARD_KEY = web_forwarding_secret(TEST_SECRET)


async def post(url: str, query: str, headers: dict[str, str] | None = None, **variables) -> dict:
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(
            url, json={"query": query, "variables": variables}, headers=headers or {}
        )
    assert resp.status_code < 500, resp.text
    return resp.json()


def from_visitor(address: str, key: str = FORWARD_KEY) -> dict[str, str]:
    """Headers the web app sends on behalf of a visitor."""
    return {"X-PaaSTech-Client-Address": address, "X-PaaSTech-Forward-Key": key}


def code(body: dict) -> str | None:
    errors = body.get("errors") or []
    return (errors[0].get("extensions") or {}).get("code") if errors else None


# -- logins --------------------------------------------------------------------------------------


async def test_guessing_from_one_address_does_not_lock_the_owner_out(
    server: Server, alice: Account
) -> None:
    attacker, owner = from_visitor("203.0.113.5"), from_visitor("198.51.100.7")
    for _ in range(5):
        body = await post(server.url, LOGIN, attacker, login=alice.username, password="wrong-1234")
        assert code(body) == "UNAUTHENTICATED"
    body = await post(server.url, LOGIN, attacker, login=alice.username, password="wrong-1234")
    assert code(body) == "RATE_LIMITED"
    assert body["errors"][0]["extensions"]["retryAfter"] > 0
    # The owner, through the same web app from elsewhere, logs in at once.
    body = await post(server.url, LOGIN, owner, login=alice.username, password=PASSWORD)
    assert body["data"]["login"]["token"].startswith("pt_")


async def test_forwarded_address_without_the_key_is_ignored(server: Server, alice: Account) -> None:
    # Forged headers from many "addresses": all counted as the real peer, one bucket.
    for i in range(5):
        forged = from_visitor(f"192.0.2.{i}", key="0" * 64)
        body = await post(server.url, LOGIN, forged, login=alice.username, password="wrong-1234")
        assert code(body) == "UNAUTHENTICATED"
    forged = from_visitor("192.0.2.99", key="0" * 64)
    body = await post(server.url, LOGIN, forged, login=alice.username, password=PASSWORD)
    assert code(body) == "RATE_LIMITED"


# -- sign-up -------------------------------------------------------------------------------------


def signup_vars() -> dict[str, str]:
    name = unique("s")
    return {"email": f"{name}@example.com", "username": name, "password": PASSWORD}


async def test_signup_is_limited_per_address(tmp_path) -> None:
    with api_server(tmp_path, signup_max_per_address=3) as url:
        first = from_visitor("203.0.113.9")
        for _ in range(3):
            body = await post(url, SIGNUP, first, **signup_vars())
            assert body["data"]["signup"]["token"]
        refused = signup_vars()
        body = await post(url, SIGNUP, first, **refused)
        assert code(body) == "RATE_LIMITED"
        assert "sign-ups" in body["errors"][0]["message"]
        me = "{ me { username } }"
        # The refused sign-up made no account.
        body = await post(url, LOGIN, first, login=refused["username"], password=PASSWORD)
        assert code(body) == "UNAUTHENTICATED"
        # Another visitor is not affected.
        body = await post(url, SIGNUP, from_visitor("198.51.100.20"), **signup_vars())
        token = body["data"]["signup"]["token"]
        assert (await Api(url, token)(me))["me"]


ALIASED_SIGNUPS = """mutation {
  a: signup(email: "a@example.com", username: "alias-a", password: "correct-horse-7") { token }
  b: signup(email: "b@example.com", username: "alias-b", password: "correct-horse-7") { token }
}"""


async def test_two_auth_mutations_in_one_request_are_refused(server: Server, anon: Api) -> None:
    err = await anon.error(ALIASED_SIGNUPS)
    assert err.code == "BAD_REQUEST"
    assert "at most one signup or login" in str(err)
    rows = await server.db.fetch(
        "SELECT count(*) FROM client WHERE username IN ('alias-a', 'alias-b')"
    )
    assert rows[0][0] == 0
    both = """mutation { signup(email: "c@example.com", username: "alias-c",
        password: "correct-horse-7") { token } login(login: "x", password: "y") { token } }"""
    assert (await anon.error(both)).code == "BAD_REQUEST"


async def test_hashing_does_not_stall_other_requests(tmp_path) -> None:
    """While sign-ups hash passwords with the production parameters (the other tests' servers
    use the cheapest), a cheap query is answered before they all finish."""
    finished: list[str] = []
    with api_server(tmp_path, password_hash_profile="rfc_9106_low_memory") as url:
        anon = Api(url)

        async def signup() -> None:
            await anon(SIGNUP, **signup_vars())
            finished.append("signup")

        async def cheap() -> None:
            await anon("{ __typename }")
            finished.append("cheap")

        signups = [asyncio.create_task(signup()) for _ in range(4)]
        await asyncio.sleep(0)  # the sign-ups' requests go out first
        await asyncio.gather(cheap(), *signups)
    assert finished.index("cheap") < len(finished) - 1
    # The accounts' hashes carry the production parameters (argon2id, 64 MiB, 3 passes).
    with sqlite3.connect(tmp_path / "paastech.sqlite3") as db:
        hashes = [row[0] for row in db.execute("SELECT password_hash FROM client")]
    assert len(hashes) == 4
    assert all(h.startswith("$argon2id$v=19$m=65536,t=3,p=4$") for h in hashes), hashes


# -- cost ----------------------------------------------------------------------------------------

EXPENSIVE = """query($n: Int!) { project(name: "nope") {
  applications(first: 100) { buildLog(first: $n) { line } } } }"""


async def test_query_cost_multiplies_list_sizes(alice: Account) -> None:
    err = await alice.api.error(EXPENSIVE, n=10_000)
    assert err.code == "QUERY_TOO_COSTLY"
    ext = err.errors[0]["extensions"]
    assert ext["cost"] > ext["budget"]
    assert str(ext["cost"]) in str(err)
    aliases = "\n".join(
        f'a{i}: project(name: "nope") {{ applications(first: 100) {{ number }} }}'
        for i in range(20)
    )
    assert (await alice.api.error("{" + aliases + "}")).code != "QUERY_TOO_COSTLY"
    # A modest page costs little: the query runs (and finds no such project).
    assert (await alice.api.error(EXPENSIVE, n=10)).code == "NOT_FOUND"


async def test_subscription_caps_per_connection_and_per_client(tmp_path) -> None:
    with api_server(
        tmp_path, max_subscriptions_per_connection=2, max_subscriptions_per_client=3
    ) as url:
        data = await Api(url)(SIGNUP, **signup_vars())
        api = Api(url, data["signup"]["token"])
        project = unique("cap")
        await api(CREATE, p=project)
        ws_url = url.replace("http://", "ws://")
        async with (
            await ws_open(ws_url, api.token) as first,
            await ws_open(ws_url, api.token) as second,
        ):
            for i in (1, 2):
                await subscribe(first, str(i), project)
                assert (await next_message(first, str(i)))["type"] == "next"
            await subscribe(first, "3", project)
            error = error_of(await next_message(first, "3"))
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert "per connection" in error["message"]
            await subscribe(second, "1", project)
            assert (await next_message(second, "1"))["type"] == "next"
            await subscribe(second, "2", project)
            error = error_of(await next_message(second, "2"))
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert "per account" in error["message"]
            # Ending one frees its slot.
            await second.send(json.dumps({"id": "1", "type": "complete"}))
            await subscribe_until_accepted(second, project)


async def ws_open(url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"])
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    return ws


async def subscribe(ws: websockets.ClientConnection, op_id: str, project: str) -> None:
    message = {"query": EVENTS, "variables": {"p": project}}
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": message}))


async def next_message(ws: websockets.ClientConnection, op_id: str) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("id") == op_id:
            return message


def error_of(reply: dict) -> dict:
    """The first error of a subscription reply: an `error` message, or `next` with errors."""
    payload = reply["payload"]
    errors = payload if reply["type"] == "error" else payload.get("errors")
    assert errors, reply
    return errors[0]


async def subscribe_until_accepted(ws: websockets.ClientConnection, project: str) -> None:
    """The freed slot is released when the server has processed `complete`: retry a bounded
    number of times instead of sleeping."""
    for attempt in range(50):
        op_id = f"retry-{attempt}"
        await subscribe(ws, op_id, project)
        reply = await next_message(ws, op_id)
        if reply["type"] == "next" and reply["payload"].get("data"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the slot was never freed")


async def test_introspection_and_graphiql_off_in_production(tmp_path) -> None:
    with api_server(tmp_path, development="false") as url:
        body = await post(url, "{ __schema { types { name } } }")
        assert code(body) == "BAD_REQUEST"
        assert "introspection" in body["errors"][0]["message"].lower()
        async with httpx.AsyncClient() as http:
            page = await http.get(url, headers={"Accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        assert (await post(url, "{ __typename }"))["data"] == {"__typename": "Query"}


async def test_introspection_on_in_development(server: Server) -> None:
    body = await post(server.url, "{ __schema { queryType { name } } }")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


# -- websockets and revoked tokens ---------------------------------------------------------------


async def open_subscribed(server: Server, token: str, project: str) -> websockets.ClientConnection:
    ws = await ws_open(server.url.replace("http://", "ws://"), token)
    await subscribe(ws, "1", project)
    assert (await next_message(ws, "1"))["payload"]["data"]["projectEvents"]["kind"] == "SUBSCRIBED"
    return ws


async def closed_with(ws: websockets.ClientConnection) -> int | None:
    """Read until the server closes the socket (bounded); the close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


CREATE_TOKEN = """mutation($name: String!, $days: Int) {
  createApiToken(name: $name, expiresInDays: $days) { token apiToken { id } } }"""


@pytest.mark.parametrize("how", ["revoke", "logout"])
async def test_revoked_token_closes_its_websockets(
    server: Server, signup: SignUp, how: str
) -> None:
    owner = await signup()
    project = unique("ws")
    await owner.api(CREATE, p=project)
    created = (await owner.api(CREATE_TOKEN, name="cli", days=None))["createApiToken"]
    token = created["token"]
    ws = await open_subscribed(server, token, project)
    other_ws = await open_subscribed(server, owner.token, project)  # another token: stays
    try:
        if how == "revoke":
            await owner.api(
                "mutation($id: ID!) { revokeApiToken(id: $id) { id } }",
                id=created["apiToken"]["id"],
            )
        else:
            await owner.api.with_token(token)("mutation { logout }")
        assert await closed_with(ws) == 4401
        # The other token's socket still works: it gets the next event.
        await owner.api(
            'mutation($p: String!) { setEnvVars(project: $p, vars: [{key: "A", value: "1"}]) '
            "{ project { name } } }",
            p=project,
        )
        event = await next_message(other_ws, "1")
        assert event["payload"]["data"]["projectEvents"]["kind"] == "ENV_CHANGED"
    finally:
        await ws.close()
        await other_ws.close()


async def test_expiring_token_closes_its_websockets(server: Server, alice: Account) -> None:
    project = unique("exp")
    await alice.api(CREATE, p=project)
    created = (await alice.api(CREATE_TOKEN, name="soon", days=1))["createApiToken"]
    soon = datetime.now(UTC) + timedelta(seconds=2)
    await server.db.fetch(
        "UPDATE api_token SET expires_at = $1 WHERE id = $2",
        soon if server.db.url else soon.isoformat(),
        int(created["apiToken"]["id"]),
    )
    ws = await open_subscribed(server, created["token"], project)
    try:
        assert await closed_with(ws) == 4401
    finally:
        await ws.close()


# -- regressions found by the fuzzer (tests/support/fuzz.py) ----------------------------


async def test_nul_characters_are_refused_not_internal(server: Server, alice: Account) -> None:
    """PostgreSQL failed with INTERNAL on a NUL in a project name (variables or literals)."""
    query = "query($p: String!) { project(name: $p) { name } }"
    err = await alice.api.error(query, p="a\x00b")
    assert err.code == "VALIDATION" and "NUL" in str(err)
    err = await alice.api.error('{ project(name: "a\\u0000b") { name } }')
    assert err.code == "VALIDATION"
    err = await alice.api.error(CREATE, p="nul\x00name")
    assert err.code == "VALIDATION"
    err = await Api(server.url).error(LOGIN, login="x\x00y", password="whatever-123")
    assert err.code == "VALIDATION"
    rows = await server.db.fetch("SELECT count(*) FROM project WHERE name LIKE 'nul%'")
    assert rows[0][0] == 0


async def test_names_longer_than_any_column_are_not_found(alice: Account) -> None:
    """A project name over 40 characters made the ORM raise (INTERNAL) in every lookup."""
    long_name = "p" * 300
    query = "query($p: String!) { project(name: $p) { name } }"
    assert (await alice.api.error(query, p=long_name)).code == "NOT_FOUND"
    assert (await alice.api.error(query, p="¾gkä¶XUD癴1NË痜韢Ð㏐O" * 5)).code == "NOT_FOUND"
    project = unique("long")
    await alice.api(CREATE, p=project)
    remove = (
        "mutation($p: String!, $h: String!) { removeDomain(project: $p, hostname: $h) { name } }"
    )
    assert (await alice.api.error(remove, p=project, h="a" * 400)).code == "NOT_FOUND"
    unset = "mutation($p: String!, $k: [String!]!) { unsetEnvVars(project: $p, keys: $k) { project { name } } }"
    assert (await alice.api.error(unset, p=project, k=["K" * 500])).code == "NOT_FOUND"
