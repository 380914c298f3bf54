"""Add-ons (issue 15) through the API alone, on SQLite and PostgreSQL, with no deployment manager
listening: every refusal happens before anything is made, a server that cannot start leaves
nothing behind, another Client's add-on and backups do not exist for the caller, and the
download endpoint is authorised like GraphQL."""

from __future__ import annotations

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
