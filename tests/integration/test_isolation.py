"""Tenant isolation: for EVERY operation of the schema, a second Client gets NOT_FOUND or an empty
result for the first Client's objects, and the first Client's data is unchanged afterwards.

The table below must name every Query, Mutation and Subscription field; a new operation without an
isolation case makes test_every_operation_has_a_case fail.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from backend.api.schema import build_schema
from tests.conftest import Account, Server, sign_up, unique
from tests.support.gqlclient import Api, GraphQLErrors
from tests.support.keys import new_public_key


@dataclass
class Owned:
    """Alice's objects that Bob must not reach."""

    project: str
    hostname: str
    key_id: str
    public_key: str
    token_id: str
    app_number: int
    addon: str  # an add-on of Alice's, attached to her project (issue 15)
    backup_id: str  # a backup of that add-on
    volume: str  # a volume of her project
    webhook_id: str = ""  # an alert webhook of her project (issue 18)
    session_id: str = ""  # her sign-up's login session (issue 18)


@dataclass
class Case:
    query: str
    variables: Any  # callable (Owned) -> dict
    expect: str  # "NOT_FOUND", "CONFLICT", "FORBIDDEN", "PUBLIC" or "OWN" (Bob's own data only)
    check: Any = None  # callable (data, Owned) -> None, for OWN results


def _lacks(field: str, attr: str, key: str = "name"):
    def check(data: dict, owned: Owned) -> None:
        values = {item[key] for item in data[field]}
        assert getattr(owned, attr) not in values

    return check


def _no_activity_of(data: dict, owned: Owned) -> None:
    assert data["activity"], "Bob's own sign-up is in his feed"
    assert all(a["project"] != owned.project for a in data["activity"]), data


CASES: dict[str, Case] = {
    # Queries
    "me": Case(
        "{ me { projects { name } } }",
        lambda o: {},
        "OWN",
        lambda d, o: _lacks("projects", "project")(d["me"], o),
    ),
    "projects": Case("{ projects { name } }", lambda o: {}, "OWN", _lacks("projects", "project")),
    "project": Case(
        "query($p: String!) { project(name: $p) { name } }", lambda o: {"p": o.project}, "NOT_FOUND"
    ),
    "application": Case(
        "query($p: String!, $n: Int!) { application(project: $p, number: $n) { number } }",
        lambda o: {"p": o.project, "n": o.app_number},
        "NOT_FOUND",
    ),
    # Issue 18: another Client's project's metrics are NOT_FOUND, whatever the range.
    "metrics": Case(
        'query($p: String!) { metrics(project: $p, range: "30d") { project } }',
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "webhooks": Case(
        "query($p: String!) { webhooks(project: $p) { url } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "sshKeys": Case("{ sshKeys { id } }", lambda o: {}, "OWN", _lacks("sshKeys", "key_id", "id")),
    "apiTokens": Case(
        "{ apiTokens { id } }", lambda o: {}, "OWN", _lacks("apiTokens", "token_id", "id")
    ),
    # Activity and sessions (issue 18): Bob's feed holds none of Alice's records.
    "activity": Case(
        "{ activity(first: 200) { project action } }", lambda o: {}, "OWN", _no_activity_of
    ),
    "sessions": Case(
        "{ sessions { id } }", lambda o: {}, "OWN", _lacks("sessions", "session_id", "id")
    ),
    "revokeSession": Case(
        "mutation($id: ID!) { revokeSession(id: $id) { id } }",
        lambda o: {"id": o.session_id},
        "NOT_FOUND",
    ),
    # Mutations
    # Public: they act on no existing object.
    "signup": Case("", None, "PUBLIC"),
    "login": Case("", None, "PUBLIC"),
    "logout": Case("mutation { logout }", lambda o: {}, "OWN", lambda d, o: None),
    # Account changes act on the caller only, after the caller's own password (issue 19): Bob
    # naming Alice's project or username changes nothing of hers.
    "changePassword": Case(
        'mutation { changePassword(currentPassword: "not-bobs-password-1", '
        'newPassword: "another-password-2") { id } }',
        lambda o: {},
        "VALIDATION",
    ),
    "deleteAccount": Case(
        'mutation($p: String!) { deleteAccount(password: "not-bobs-password-1", confirm: $p) '
        "{ id } }",
        lambda o: {"p": o.project},
        "VALIDATION",
    ),
    "createApiToken": Case(
        'mutation { createApiToken(name: "bob") { apiToken { id } } }',
        lambda o: {},
        "OWN",
        lambda d, o: None,
    ),
    "revokeApiToken": Case(
        "mutation($id: ID!) { revokeApiToken(id: $id) { id } }",
        lambda o: {"id": o.token_id},
        "NOT_FOUND",
    ),
    "addSshKey": Case(
        "mutation($k: String!) { addSshKey(publicKey: $k) { id } }",
        lambda o: {"k": o.public_key},
        "CONFLICT",
    ),
    "removeSshKey": Case(
        "mutation($id: ID!) { removeSshKey(id: $id) { id } }",
        lambda o: {"id": o.key_id},
        "NOT_FOUND",
    ),
    "createProject": Case(
        "mutation($p: String!) { createProject(name: $p) { name } }",
        lambda o: {"p": o.project},
        "CONFLICT",
    ),
    "deleteProject": Case(
        "mutation($p: String!) { deleteProject(name: $p) { name } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "setEnvVars": Case(
        'mutation($p: String!) { setEnvVars(project: $p, vars: [{key: "FOO", value: "pwned"}]) { project { name } } }',
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "unsetEnvVars": Case(
        'mutation($p: String!) { unsetEnvVars(project: $p, keys: ["FOO"]) { project { name } } }',
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "addDomain": Case(
        'mutation($p: String!) { addDomain(project: $p, hostname: "evil.example.net") { name } }',
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "verifyDomain": Case(
        "mutation($p: String!, $h: String!) { verifyDomain(project: $p, hostname: $h) { name } }",
        lambda o: {"p": o.project, "h": o.hostname},
        "NOT_FOUND",
    ),
    "removeDomain": Case(
        "mutation($p: String!, $h: String!) { removeDomain(project: $p, hostname: $h) { name } }",
        lambda o: {"p": o.project, "h": o.hostname},
        "NOT_FOUND",
    ),
    "deploy": Case(
        "mutation($p: String!) { deploy(project: $p) { number } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "rollback": Case(
        "mutation($p: String!, $n: Int) { rollback(project: $p, number: $n) { number } }",
        lambda o: {"p": o.project, "n": o.app_number},
        "NOT_FOUND",
    ),
    "restart": Case(
        "mutation($p: String!) { restart(project: $p) { number } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "restartProcesses": Case(
        'mutation($p: String!) { restartProcesses(project: $p, processType: "web", replica: 1) '
        "{ replica } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "scale": Case(
        'mutation($p: String!) { scale(project: $p, processType: "web", replicas: 3) { project { name } } }',
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "setResources": Case(
        "mutation($p: String!) { setResources(project: $p, memoryMb: 64) { project { name } } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "updateProjectSettings": Case(
        "mutation($p: String!) { updateProjectSettings(project: $p, port: 8000) { project { name } } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "stop": Case(
        "mutation($p: String!) { stop(project: $p) { number } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "start": Case(
        "mutation($p: String!) { start(project: $p) { number } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    # Add-ons and volumes (issue 15): rows written directly (no Pomegranate here); Bob naming
    # them is refused before anything reaches the runtime.
    "addons": Case("{ addons { name } }", lambda o: {}, "OWN", _lacks("addons", "addon")),
    "addon": Case(
        "query($n: String!) { addon(name: $n) { name } }", lambda o: {"n": o.addon}, "NOT_FOUND"
    ),
    "addonBackups": Case(
        "{ addonBackups { id } }", lambda o: {}, "OWN", _lacks("addonBackups", "backup_id", "id")
    ),
    "createAddon": Case(
        'mutation($p: String!) { createAddon(project: $p, kind: "redis") { name } }',
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "removeAddon": Case(
        "mutation($n: String!) { removeAddon(name: $n, confirm: $n) { name } }",
        lambda o: {"n": o.addon},
        "NOT_FOUND",
    ),
    "attachAddon": Case(
        "mutation($n: String!, $p: String!) { attachAddon(name: $n, project: $p) { addon { name } } }",
        lambda o: {"n": o.addon, "p": o.project},
        "NOT_FOUND",
    ),
    "detachAddon": Case(
        "mutation($n: String!, $p: String!) { detachAddon(name: $n, project: $p) { addon { name } } }",
        lambda o: {"n": o.addon, "p": o.project},
        "NOT_FOUND",
    ),
    "rotateAddonCredentials": Case(
        "mutation($n: String!) { rotateAddonCredentials(name: $n) { name } }",
        lambda o: {"n": o.addon},
        "NOT_FOUND",
    ),
    "backupAddon": Case(
        "mutation($n: String!) { backupAddon(name: $n) { id } }",
        lambda o: {"n": o.addon},
        "NOT_FOUND",
    ),
    "restoreAddon": Case(
        "mutation($n: String!, $b: ID!) { restoreAddon(name: $n, backupId: $b) { id } }",
        lambda o: {"n": o.addon, "b": o.backup_id},
        "NOT_FOUND",
    ),
    # Issue 18: Bob can neither add a webhook to Alice's project (to read her alerts) nor remove
    # hers, even with her webhook's id.
    "addWebhook": Case(
        'mutation($p: String!) { addWebhook(project: $p, url: "https://evil.example.com/") '
        "{ id } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "removeWebhook": Case(
        "mutation($p: String!, $id: ID!) { removeWebhook(project: $p, id: $id) { id } }",
        lambda o: {"p": o.project, "id": o.webhook_id},
        "NOT_FOUND",
    ),
    "addVolume": Case(
        'mutation($p: String!) { addVolume(project: $p, mountPath: "/srv/loot") { project { name } } }',
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "removeVolume": Case(
        "mutation($p: String!, $v: String!) { removeVolume(project: $p, name: $v, confirm: $p) "
        "{ volume { name } } }",
        lambda o: {"p": o.project, "v": o.volume},
        "NOT_FOUND",
    ),
    # The operator's node API (issue 16): a Client, logged in or not, is FORBIDDEN, even with
    # the operator token configured on this server (tests/conftest.py).
    "nodes": Case("{ nodes { id } }", lambda o: {}, "FORBIDDEN"),
    "nodeJoinCommand": Case("{ nodeJoinCommand }", lambda o: {}, "FORBIDDEN"),
    "drainNode": Case('mutation { drainNode(node: "worker-1") { id } }', lambda o: {}, "FORBIDDEN"),
    "activateNode": Case(
        'mutation { activateNode(node: "worker-1") { id } }', lambda o: {}, "FORBIDDEN"
    ),
    "removeNode": Case('mutation { removeNode(node: "worker-1") }', lambda o: {}, "FORBIDDEN"),
    # Subscriptions
    "activityEvents": Case(
        "subscription($p: String) { activityEvents(project: $p) { action } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "applicationStatus": Case(
        "subscription($p: String!) { applicationStatus(project: $p) { number } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "buildLogs": Case(
        "subscription($p: String!, $n: Int!) { buildLogs(project: $p, number: $n) { line } }",
        lambda o: {"p": o.project, "n": o.app_number},
        "NOT_FOUND",
    ),
    "runtimeLogs": Case(
        "subscription($p: String!) { runtimeLogs(project: $p) { line } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "metricsLive": Case(
        "subscription($p: String!) { metricsLive(project: $p) { at } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
    "addonStatus": Case(
        "subscription($n: String!) { addonStatus(name: $n) { status } }",
        lambda o: {"n": o.addon},
        "NOT_FOUND",
    ),
    "addonLogs": Case(
        "subscription($n: String!) { addonLogs(name: $n, follow: false) { line } }",
        lambda o: {"n": o.addon},
        "NOT_FOUND",
    ),
    "projectEvents": Case(
        "subscription($p: String!) { projectEvents(project: $p) { kind } }",
        lambda o: {"p": o.project},
        "NOT_FOUND",
    ),
}


def _operations() -> set[str]:
    schema = build_schema()._schema
    names: set[str] = set()
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        if root is not None:
            names |= set(root.fields)
    return names


def test_every_operation_has_a_case() -> None:
    assert set(CASES) == _operations()


async def _setup_alice(server: Server, alice: Account) -> Owned:
    project = unique("iso")
    await alice.api("mutation($p: String!) { createProject(name: $p) { name } }", p=project)
    await alice.api(
        'mutation($p: String!) { setEnvVars(project: $p, vars: [{key: "FOO", value: "secret"}]) { project { name } } }',
        p=project,
    )
    hostname = f"{project}.example.com"
    await alice.api(
        "mutation($p: String!, $h: String!) { addDomain(project: $p, hostname: $h) { name } }",
        p=project,
        h=hostname,
    )
    public_key = new_public_key()
    key = await alice.api("mutation($k: String!) { addSshKey(publicKey: $k) { id } }", k=public_key)
    token = await alice.api('mutation { createApiToken(name: "ci") { apiToken { id } } }')
    # Releases come from deploys; one row is enough to prove it cannot be read across tenants.
    rows = await server.db.fetch("SELECT id FROM project WHERE name = $1", project)
    await server.db.fetch(
        "INSERT INTO application (project_id, number, cause, status, env_snapshot, replicas, domains, processes, volumes, created_at)"
        " VALUES ($1, 1, 'test', 'running', '', '{}', '[]', '{}', '[]', CURRENT_TIMESTAMP)",
        rows[0][0],
    )
    client_id = (
        await server.db.fetch("SELECT id FROM client WHERE username = $1", alice.username)
    )[0][0]
    # A valid add-on name: an invalid one would be NOT_FOUND for Alice too, proving nothing.
    addon = f"redis-iso-{secrets.randbelow(999_999) + 1}"
    await server.db.fetch(
        "INSERT INTO addon (client_id, kind, plan, name, status, version, password_encrypted, "
        "created_at) VALUES ($1, 'redis', 'mini', $2, 'available', '7', 'x', CURRENT_TIMESTAMP)",
        client_id,
        addon,
    )
    addon_id = (await server.db.fetch("SELECT id FROM addon WHERE name = $1", addon))[0][0]
    await server.db.fetch(
        "INSERT INTO addon_attachment (addon_id, project_id, config_var, created_at) "
        "VALUES ($1, $2, 'REDIS_URL', CURRENT_TIMESTAMP)",
        addon_id,
        rows[0][0],
    )
    await server.db.fetch(
        "INSERT INTO addon_status_change (addon_id, status, message, at) "
        "VALUES ($1, 'available', '', CURRENT_TIMESTAMP)",
        addon_id,
    )
    await server.db.fetch(
        "INSERT INTO addon_backup (client_id, addon_id, addon_name, addon_kind, file_name, "
        "size_bytes, kind, created_at) VALUES ($1, $2, $3, 'redis', 'b.rdb', 1, 'manual', "
        "CURRENT_TIMESTAMP)",
        client_id,
        addon_id,
        addon,
    )
    backup_id = (
        await server.db.fetch("SELECT id FROM addon_backup WHERE addon_id = $1", addon_id)
    )[0][0]
    await server.db.fetch(
        "INSERT INTO volume (project_id, name, key, mount_path, process_types, created_at) "
        "VALUES ($1, 'files', 'abcdef012345', '/srv/files', '[\"web\"]', CURRENT_TIMESTAMP)",
        rows[0][0],
    )
    hook = await alice.api(
        'mutation($p: String!) { addWebhook(project: $p, url: "https://hooks.example.com/a") '
        "{ id } }",
        p=project,
    )
    session = await server.db.fetch(
        "SELECT id FROM api_token WHERE client_id = $1 AND kind = 'session'", client_id
    )
    return Owned(
        project,
        hostname,
        key["addSshKey"]["id"],
        public_key,
        token["createApiToken"]["apiToken"]["id"],
        1,
        addon,
        str(backup_id),
        "files",
        hook["addWebhook"]["id"],
        str(session[0][0]),
    )


async def _snapshot(server: Server, alice: Account, owned: Owned) -> dict:
    rows = {
        table: await server.db.fetch(f"SELECT * FROM {table} ORDER BY id")
        for table in (
            "addon",
            "addon_attachment",
            "addon_backup",
            "addon_status_change",
            "volume",
            "webhook",
        )
    }
    return rows | await alice.api(
        """query($p: String!, $n: Int!) {
          project(name: $p) { name envVars { key value } domains { hostname } applicationCount
            settings { replicas { processType replicas } memoryMb cpu port healthCheckPath deployBranch } }
          application(project: $p, number: $n) { number status }
          sshKeys { id } apiTokens { id } sessions { id } }""",
        p=owned.project,
        n=owned.app_number,
    )


@pytest.fixture(scope="module")
async def alice_owned(server: Server) -> tuple[Account, Owned]:
    """Alice and her objects, made once per backend (a sign-up and about twenty requests and
    inserts, which each of the 120 cases made for itself): a case only lets Bob try them, and
    fails if they differ after his attempt from before it. Bob stays one per case."""
    alice = await sign_up(server)
    return alice, await _setup_alice(server, alice)


@pytest.mark.parametrize("operation", sorted(op for op, c in CASES.items() if c.expect != "PUBLIC"))
async def test_second_client_cannot_reach_first_clients_objects(
    server: Server, alice_owned: tuple[Account, Owned], bob: Account, operation: str
) -> None:
    case = CASES[operation]
    alice, owned = alice_owned
    before = await _snapshot(server, alice, owned)
    variables = case.variables(owned)

    if case.query.startswith("subscription"):
        result = await _subscribe_first(bob.api, case.query, variables)
        assert isinstance(result, GraphQLErrors) and result.code == case.expect, result
    elif case.expect == "OWN":
        data = await bob.api(case.query, **variables)
        case.check(data, owned)
    else:
        err = await bob.api.error(case.query, **variables)
        assert err.code == case.expect, err.errors

    assert await _snapshot(server, alice, owned) == before


async def _subscribe_first(api: Api, query: str, variables: dict) -> object:
    from gql.transport.exceptions import TransportQueryError

    try:
        async with api.subscribe(query, **variables) as events:
            async for event in events:
                return event
    except TransportQueryError as exc:
        return GraphQLErrors(exc.errors or [{"message": str(exc)}])
    return None
