"""Add-ons (issue 15) through the API alone, on SQLite and PostgreSQL, with no deployment manager
listening: every refusal happens before anything is made, a server that cannot start leaves
nothing behind, another Client's add-on and backups do not exist for the caller, and the
download endpoint is authorised like GraphQL."""

from __future__ import annotations

import secrets

import httpx

from tests.conftest import Account, Server, unique

CREATE_PROJECT = "mutation($n: String!) { createProject(name: $n) { name } }"
CREATE = "mutation($p: String!, $k: String!, $plan: String) { createAddon(project: $p, kind: $k, plan: $plan) { name } }"
ADDONS = "{ addons { name } addonBackups { id } }"
ENV = "query($p: String!) { project(name: $p) { envVars { key } addons { name } } }"
BY_NAME = (
    "query($n: String!) { addon(name: $n) { name } }",
    "mutation($n: String!) { removeAddon(name: $n, confirm: $n) { name } }",
    "mutation($n: String!) { backupAddon(name: $n) { id } }",
    "mutation($n: String!) { rotateAddonCredentials(name: $n) { name } }",
    'mutation($n: String!) { restoreAddon(name: $n, backupId: "1") { id } }',
)


async def project_of(account: Account) -> str:
    name = unique("ad")
    await account.api(CREATE_PROJECT, n=name)
    return name


async def nothing_made(account: Account, project: str) -> None:
    assert await account.api(ADDONS) == {"addons": [], "addonBackups": []}
    assert (await account.api(ENV, p=project))["project"] == {"envVars": [], "addons": []}


async def test_unknown_kinds_and_plans_are_refused_and_change_nothing(alice: Account) -> None:
    project = await project_of(alice)
    for kind in ("mysql", "", "Postgres", "redis; drop table addon"):
        error = await alice.api.error(CREATE, p=project, k=kind)
        assert (error.code, error.field) == ("VALIDATION", "kind"), kind
        assert "postgres, redis" in str(error)
    error = await alice.api.error(CREATE, p=project, k="postgres", plan="enormous")
    assert (error.code, error.field) == ("VALIDATION", "plan")
    assert "mini" in str(error)
    await nothing_made(alice, project)


async def test_a_server_that_cannot_start_leaves_nothing_behind(alice: Account) -> None:
    project = await project_of(alice)
    error = await alice.api.error(CREATE, p=project, k="postgres")
    assert error.code == "UNAVAILABLE"
    await nothing_made(alice, project)


async def test_the_addons_quota_refuses_before_anything_is_made(
    server: Server, alice: Account
) -> None:
    project = await project_of(alice)
    await server.db.fetch(
        'INSERT INTO client_quota (client_id, name, "limit") VALUES ($1, $2, $3)',
        int(alice.id),
        "addons",
        0.0,
    )
    error = await alice.api.error(CREATE, p=project, k="redis")
    assert (error.code, error.field) == ("VALIDATION", "kind")
    assert "quota addons exceeded: limit 0, in use 0" in str(error)
    await nothing_made(alice, project)


async def test_another_clients_project_is_not_found(alice: Account, bob: Account) -> None:
    project = await project_of(alice)
    error = await bob.api.error(CREATE, p=project, k="postgres")
    assert (error.code, error.field) == ("NOT_FOUND", "project")
    await nothing_made(alice, project)


async def test_unknown_and_malformed_addon_names_are_not_found(alice: Account) -> None:
    for name in ("postgresql-amber-1", "../../etc", "x" * 500, "postgresql-amber-1\n"):
        for query in BY_NAME:
            error = await alice.api.error(query, n=name)
            assert error.code == "NOT_FOUND", (query, name)


async def test_backup_downloads_need_the_owners_token(server: Server, alice: Account) -> None:
    base = server.url.rsplit("/", 1)[0]
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base}/addon-backups/1")
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        bad = await http.get(
            f"{base}/addon-backups/1", headers={"Authorization": "Bearer pt_not-a-token"}
        )
        assert bad.status_code == 401
        auth = {"Authorization": f"Bearer {alice.token}"}
        for backup_id in ("1", "999999999", "abc", "-1", "1e3"):
            response = await http.get(f"{base}/addon-backups/{backup_id}", headers=auth)
            assert response.status_code == 404, backup_id
            assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        # A path that is no backup id at all is no route: nothing is read.
        for path in ("1/../../secret.key", "..%2Fsecret.key"):
            response = await http.get(f"{base}/addon-backups/{path}", headers=auth)
            assert response.status_code == 404 and "secret" not in response.text, path


# ------------------------------------------------------------------ status history and logs

HISTORY = "query($n: String!, $l: Int!) { addon(name: $n) { status statusHistory(last: $l) { name status message at } } }"
STATUS_SUB = "subscription($n: String!, $l: Int!) { addonStatus(name: $n, last: $l) { name status message } }"
LOGS_SUB = (
    "subscription($n: String!, $t: Int!) { addonLogs(name: $n, tail: $t, follow: false) { line } }"
)


async def addon_with_history(server: Server, account: Account, statuses: list[str]) -> str:
    """An add-on row of ``account`` (no server: nothing listens) with these transitions."""
    name = f"redis-hist-{secrets.randbelow(999_999) + 1}"  # as add-on names are
    client_id = (
        await server.db.fetch("SELECT id FROM client WHERE username = $1", account.username)
    )[0][0]
    await server.db.fetch(
        "INSERT INTO addon (client_id, kind, plan, name, status, version, password_encrypted, "
        "created_at) VALUES ($1, 'redis', 'mini', $2, $3, '7', 'x', CURRENT_TIMESTAMP)",
        client_id,
        name,
        statuses[-1],
    )
    addon_id = (await server.db.fetch("SELECT id FROM addon WHERE name = $1", name))[0][0]
    for status in statuses:
        await server.db.fetch(
            "INSERT INTO addon_status_change (addon_id, status, message, at) "
            "VALUES ($1, $2, $3, CURRENT_TIMESTAMP)",
            addon_id,
            status,
            f"why {status}",
        )
    return name


async def first_events(account: Account, query: str, count: int, **variables: object) -> object:
    """The subscription's first ``count`` events, or its GraphQL errors."""
    from gql.transport.exceptions import TransportQueryError

    from tests.support.gqlclient import GraphQLErrors

    seen: list[dict] = []
    try:
        async with account.api.subscribe(query, **variables) as events:
            async for event in events:
                seen.append(event)
                if len(seen) == count:
                    break
    except TransportQueryError as exc:
        return GraphQLErrors(exc.errors or [{"message": str(exc)}])
    return seen


async def test_the_status_history_is_listed_and_subscribed_oldest_first(
    server: Server, alice: Account
) -> None:
    name = await addon_with_history(server, alice, ["creating", "available", "down", "available"])
    addon = (await alice.api(HISTORY, n=name, l=3))["addon"]
    assert addon["status"] == "available"
    assert [(h["status"], h["message"]) for h in addon["statusHistory"]] == [
        ("available", "why available"),
        ("down", "why down"),
        ("available", "why available"),
    ]
    assert {h["name"] for h in addon["statusHistory"]} == {name}
    events = await first_events(alice, STATUS_SUB, 2, n=name, l=2)
    assert [e["addonStatus"]["status"] for e in events] == ["down", "available"]


async def test_bad_history_and_log_arguments_are_refused_and_change_nothing(
    server: Server, alice: Account
) -> None:
    name = await addon_with_history(server, alice, ["creating", "available"])
    before = await server.db.fetch("SELECT * FROM addon_status_change ORDER BY id")
    for last in (0, -1, 201):
        error = await alice.api.error(HISTORY, n=name, l=last)
        assert (error.code, error.field) == ("VALIDATION", "last"), last
        error = await first_events(alice, STATUS_SUB, 1, n=name, l=last)
        assert (error.code, error.field) == ("VALIDATION", "last"), last
    for tail in (-1, 10_001):
        error = await first_events(alice, LOGS_SUB, 1, n=name, t=tail)
        assert (error.code, error.field) == ("VALIDATION", "tail"), tail
    for bad in ("postgresql-amber-1", "../../etc", "x" * 500):
        for query, variables in ((STATUS_SUB, {"l": 5}), (LOGS_SUB, {"t": 5})):
            error = await first_events(alice, query, 1, n=bad, **variables)
            assert error.code == "NOT_FOUND", (query, bad)
    assert await server.db.fetch("SELECT * FROM addon_status_change ORDER BY id") == before


async def test_logs_without_a_deployment_manager_are_unavailable(
    server: Server, alice: Account
) -> None:
    name = await addon_with_history(server, alice, ["available"])
    error = await first_events(alice, LOGS_SUB, 1, n=name, t=10)
    assert error.code == "UNAVAILABLE"
