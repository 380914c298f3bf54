"""The activity feed, login sessions, password change, account deletion and the honest project
state (issue 18), against a real API server on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, Account, Server, unique
from tests.support.gqlclient import Api, GraphQLErrors
from tests.support.polling import within

FEED = """query($p: String, $first: Int, $after: ID) {
  activity(project: $p, first: $first, after: $after) {
    id action project source tokenId tokenName summary detail } }"""
LOGIN = """mutation($login: String!, $password: String!) { login(login: $login, password: $password)
  { token } }"""
SESSIONS = "{ sessions { id device current lastUsedAt } }"
REVOKE_SESSION = "mutation($id: ID!) { revokeSession(id: $id) { id device } }"
CHANGE_PASSWORD = """mutation($c: String!, $n: String!) {
  changePassword(currentPassword: $c, newPassword: $n) { id } }"""
DELETE_ACCOUNT = """mutation($p: String!, $c: String!) {
  deleteAccount(password: $p, confirm: $c) { username } }"""
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def post(
    url: str, query: str, token: str | None = None, headers: dict | None = None, **variables: Any
) -> dict:
    """One GraphQL request with chosen headers (the test client sends none of its own)."""
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, json={"query": query, "variables": variables}, headers=sent)
    body = response.json()
    if body.get("errors"):
        raise GraphQLErrors(body["errors"])
    return body["data"]


async def login(server: Server, account: Account, user_agent: str = FIREFOX) -> str:
    data = await post(
        server.url,
        LOGIN,
        headers={"User-Agent": user_agent},
        login=account.username,
        password=PASSWORD,
    )
    return data["login"]["token"]


async def new_project(account: Account) -> str:
    name = unique("act")
    await account.api("mutation($p: String!) { createProject(name: $p) { name } }", p=name)
    return name


# -- activity -----------------------------------------------------------------------------------


async def test_actions_are_recorded_with_who_where_and_no_secret(
    server: Server, alice: Account
) -> None:
    project = await new_project(alice)
    await post(
        server.url,
        'mutation($p: String!) { setEnvVars(project: $p, vars: [{key: "API_KEY", '
        'value: "hunter2-secret"}]) { project { name } } }',
        alice.token,
        {"X-PaaSTech-Source": "cli"},
        p=project,
    )
    await post(
        server.url,
        'mutation($p: String!) { scale(project: $p, processType: "web", replicas: 0) { project { name } } }',
        alice.token,
        {"X-PaaSTech-Source": "web"},
        p=project,
    )
    await post(
        server.url,
        'mutation($p: String!) { addDomain(project: $p, hostname: "www.example.org") { name } }',
        alice.token,
        {"X-PaaSTech-Source": "something-else"},
        p=project,
    )
    feed = (await alice.api(FEED, p=project))["activity"]
    assert [a["action"] for a in feed] == ["domain.add", "scale", "env.set", "project.create"]
    assert [a["source"] for a in feed] == ["api", "web", "cli", "api"]
    assert all(a["project"] == project for a in feed)
    assert feed[2]["detail"] == {"keys": ["API_KEY"]}
    assert feed[2]["summary"] == "set env API_KEY"
    assert feed[1]["summary"] == "scaled web to 0"
    # Signed up: the token acting is the sign-up's session.
    assert feed[0]["tokenName"] == "login" and feed[0]["tokenId"]
    # Never the value, anywhere in the feed or its table.
    everything = await alice.api(FEED)
    assert "hunter2-secret" not in str(everything)
    rows = await server.db.fetch("SELECT detail FROM activity")
    assert all("hunter2-secret" not in str(r[0]) for r in rows)


async def test_feed_of_all_projects_and_pages(server: Server, alice: Account) -> None:
    first = await new_project(alice)
    second = await new_project(alice)
    await alice.api('mutation { createApiToken(name: "deploy-bot") { token } }')
    everything = (await alice.api(FEED, first=50))["activity"]
    actions = [(a["action"], a["project"]) for a in everything]
    assert actions[:3] == [
        ("token.create", None),
        ("project.create", second),
        ("project.create", first),
    ]
    assert ("session.login", None) in actions
    page1 = (await alice.api(FEED, first=2))["activity"]
    page2 = (await alice.api(FEED, first=2, after=page1[-1]["id"]))["activity"]
    assert [a["id"] for a in page1 + page2] == [a["id"] for a in everything[:4]]
    only_second = (await alice.api(FEED, p=second))["activity"]
    assert [a["action"] for a in only_second] == ["project.create"]


async def test_bad_feed_arguments_are_refused(alice: Account) -> None:
    err = await alice.api.error(FEED, first=0)
    assert (err.code, err.field) == ("VALIDATION", "first")
    err = await alice.api.error(FEED, first=201)
    assert (err.code, err.field) == ("VALIDATION", "first")
    err = await alice.api.error(FEED, after="not-a-number")
    assert (err.code, err.field) == ("NOT_FOUND", "after")
    for huge in ("99999999999999999999999", "-1"):  # no row; not an INTERNAL from the database
        err = await alice.api.error(FEED, after=huge)
        assert (err.code, err.field) == ("NOT_FOUND", "after")
    err = await alice.api.error(FEED, p="no-such-project")
    assert err.code == "NOT_FOUND"


async def test_deleted_project_stays_in_the_feed_by_name(alice: Account) -> None:
    project = await new_project(alice)
    await alice.api("mutation($p: String!) { deleteProject(name: $p) { name } }", p=project)
    feed = (await alice.api(FEED, first=3))["activity"]
    assert (feed[0]["action"], feed[0]["project"]) == ("project.delete", project)
    assert feed[1]["project"] == project  # its creation, kept by name


async def test_another_client_sees_none_of_it(alice: Account, bob: Account) -> None:
    project = await new_project(alice)
    bobs = (await bob.api(FEED, first=200))["activity"]
    assert bobs and all(a["project"] != project for a in bobs)
    assert all(a["action"] == "session.login" for a in bobs)
    err = await bob.api.error(FEED, p=project)
    assert err.code == "NOT_FOUND"
    alices = (await alice.api(FEED, first=200))["activity"]
    assert not {a["id"] for a in alices} & {a["id"] for a in bobs}


async def test_live_feed(server: Server, alice: Account, bob: Account) -> None:
    project = await new_project(alice)
    query = "subscription($p: String) { activityEvents(project: $p) { action project source } }"
    seen: list[dict] = []
    async with (
        alice.api.subscribe(query, p=project) as events,
        within(20, lambda: f"no activity event; got {seen}"),
    ):
        # First the newest record so far: from here on nothing is missed.
        first = await anext(aiter(events))
        assert first["activityEvents"]["action"] == "project.create"
        await bob.api('mutation { createApiToken(name: "not-alice") { token } }')
        await post(
            server.url,
            'mutation($p: String!) { scale(project: $p, processType: "worker", replicas: 2)'
            " { project { name } } }",
            alice.token,
            {"X-PaaSTech-Source": "web"},
            p=project,
        )
        async for event in events:
            seen.append(event["activityEvents"])
            break
    assert seen == [{"action": "scale", "project": project, "source": "web"}]


async def test_live_feed_of_another_clients_project_is_refused(
    alice: Account, bob: Account
) -> None:
    from gql.transport.exceptions import TransportQueryError

    project = await new_project(alice)
    query = "subscription($p: String) { activityEvents(project: $p) { action } }"
    refused: list[dict] = []
    try:
        async with bob.api.subscribe(query, p=project) as events:
            async for event in events:
                pytest.fail(f"Bob got an event of Alice's project: {event}")
    except TransportQueryError as exc:
        refused = exc.errors or []
    assert refused and refused[0]["extensions"]["code"] == "NOT_FOUND"


# -- sessions -----------------------------------------------------------------------------------


async def test_sessions_list_devices_and_mark_this_one(server: Server, alice: Account) -> None:
    token = await login(server, alice)
    listed = (await post(server.url, SESSIONS, token))["sessions"]
    current = [s for s in listed if s["current"]]
    assert len(current) == 1 and current[0]["device"] == "Firefox on Linux"
    assert len(listed) == 2  # the sign-up's session and this login
    # API tokens are not sessions.
    await alice.api('mutation { createApiToken(name: "ci") { token } }')
    assert len((await alice.api(SESSIONS))["sessions"]) == 2


async def test_revoked_session_is_unauthenticated(server: Server, alice: Account) -> None:
    token = await login(server, alice)
    sessions = (await post(server.url, SESSIONS, token))["sessions"]
    this = next(s for s in sessions if s["current"])
    revoked = (await alice.api(REVOKE_SESSION, id=this["id"]))["revokeSession"]
    assert revoked["device"] == "Firefox on Linux"
    with pytest.raises(GraphQLErrors) as err:
        await post(server.url, "{ me { username } }", token)
    assert err.value.code == "UNAUTHENTICATED"
    assert (await alice.api("{ me { username } }"))["me"]["username"] == alice.username
    feed = (await alice.api(FEED, first=1))["activity"]
    assert feed[0]["action"] == "session.revoke"


async def test_logout_removes_the_session(server: Server, alice: Account) -> None:
    token = await login(server, alice)
    await post(server.url, "mutation { logout }", token)
    assert len((await alice.api(SESSIONS))["sessions"]) == 1


async def test_revoke_session_bad_paths(alice: Account, bob: Account) -> None:
    bobs = (await bob.api(SESSIONS))["sessions"][0]["id"]
    err = await alice.api.error(REVOKE_SESSION, id=bobs)
    assert (err.code, err.field) == ("NOT_FOUND", "id")
    token_id = (await alice.api('mutation { createApiToken(name: "x") { apiToken { id } } }'))[
        "createApiToken"
    ]["apiToken"]["id"]
    err = await alice.api.error(REVOKE_SESSION, id=token_id)  # a named token is not a session
    assert err.code == "NOT_FOUND"
    for bad in ("nope", "99999999999999999999", "-3"):
        err = await alice.api.error(REVOKE_SESSION, id=bad)
        assert (err.code, err.field) == ("NOT_FOUND", "id")
    assert (await bob.api("{ me { username } }"))["me"]["username"] == bob.username


# -- password and account -------------------------------------------------------------------------


async def test_password_change_revokes_other_sessions(server: Server, alice: Account) -> None:
    other = await login(server, alice)
    bot = (await alice.api('mutation { createApiToken(name: "bot") { token } }'))["createApiToken"][
        "token"
    ]
    err = await alice.api.error(CHANGE_PASSWORD, c="wrong-password-1", n="new-password-42")
    assert (err.code, err.field) == ("VALIDATION", "currentPassword")
    err = await alice.api.error(CHANGE_PASSWORD, c=PASSWORD, n="short")
    assert (err.code, err.field) == ("VALIDATION", "newPassword")
    assert (await post(server.url, "{ me { username } }", other))["me"]
    await alice.api(CHANGE_PASSWORD, c=PASSWORD, n="new-password-42")
    with pytest.raises(GraphQLErrors) as raised:
        await post(server.url, "{ me { username } }", other)
    assert raised.value.code == "UNAUTHENTICATED"
    assert (await alice.api("{ me { username } }"))["me"]  # this session stays
    assert (await post(server.url, "{ me { username } }", bot))["me"]  # named tokens stay
    assert await post(server.url, LOGIN, login=alice.username, password="new-password-42")
    feed = (await alice.api(FEED, first=2))["activity"]
    assert feed[0]["action"] == "session.login"  # the login with the new password
    assert feed[1]["summary"] == "changed the password (1 other sessions revoked)"


async def test_account_deletion_needs_the_name_or_email(server: Server, alice: Account) -> None:
    project = await new_project(alice)
    err = await alice.api.error(DELETE_ACCOUNT, p=PASSWORD, c="someone-else")
    assert (err.code, err.field) == ("VALIDATION", "confirm")
    err = await alice.api.error(DELETE_ACCOUNT, p="wrong-password-1", c=alice.email)
    assert (err.code, err.field) == ("VALIDATION", "password")
    assert (await alice.api("{ projects { name } }"))["projects"] == [{"name": project}]
    deleted = await alice.api(DELETE_ACCOUNT, p=PASSWORD, c=alice.email)
    assert deleted["deleteAccount"]["username"] == alice.username
    err = await alice.api.error("{ me { username } }")
    assert err.code == "UNAUTHENTICATED"
    rows = await server.db.fetch("SELECT count(*) FROM project WHERE name = $1", project)
    assert rows[0][0] == 0


# -- honest state -------------------------------------------------------------------------------


STATE = """query($p: String!) { project(name: $p) { state
  liveApplication { state } applications { number state } } }"""


async def _release(server: Server, project: str, number: int, status: str, replicas: str) -> None:
    rows = await server.db.fetch("SELECT id FROM project WHERE name = $1", project)
    await server.db.fetch(
        "INSERT INTO application (project_id, number, cause, status, env_snapshot, replicas, "
        "domains, processes, volumes, created_at) VALUES ($1, $2, 'test', $3, '', $4, '[]', "
        "'{}', '[]', CURRENT_TIMESTAMP)",
        rows[0][0],
        number,
        status,
        replicas,
    )


async def test_project_state_never_says_running_for_nothing_served(
    server: Server, alice: Account
) -> None:
    project = await new_project(alice)
    assert (await alice.api(STATE, p=project))["project"]["state"] == "NEW"
    await _release(server, project, 1, "queued", "{}")
    assert (await alice.api(STATE, p=project))["project"]["state"] == "DEPLOYING"
    await server.db.fetch(
        "DELETE FROM application WHERE project_id = (SELECT id FROM project WHERE name = $1)",
        project,
    )
    await _release(server, project, 1, "running", '{"web": 0, "worker": 1}')
    data = (await alice.api(STATE, p=project))["project"]
    assert data["state"] == "IDLE" and data["liveApplication"]["state"] == "IDLE"
    listed = (await alice.api("{ projects { name state } }"))["projects"]
    assert {"name": project, "state": "IDLE"} in listed
    await server.db.fetch(
        "UPDATE application SET replicas = '{\"web\": 2}' WHERE project_id = "
        "(SELECT id FROM project WHERE name = $1)",
        project,
    )
    assert (await alice.api(STATE, p=project))["project"]["state"] == "RUNNING"
    await server.db.fetch(
        "UPDATE application SET status = 'stopped' WHERE project_id = "
        "(SELECT id FROM project WHERE name = $1)",
        project,
    )
    data = (await alice.api(STATE, p=project))["project"]
    assert data["state"] == "STOPPED" and data["liveApplication"] is None
    assert data["applications"] == [{"number": 1, "state": "STOPPED"}]


async def test_unused_api_is_anonymous(anon: Api) -> None:
    err = await anon.error(FEED)
    assert err.code == "UNAUTHENTICATED"
    err = await anon.error(SESSIONS)
    assert err.code == "UNAUTHENTICATED"
