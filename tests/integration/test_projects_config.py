"""Projects, env vars, domains and SSH keys: good paths, and every rule with bad input."""

from __future__ import annotations

import pytest

from tests.conftest import Account, Server, unique
from tests.support.keys import new_public_key

CREATE = "mutation($name: String!) { createProject(name: $name) { name url createdAt } }"
DELETE = "mutation($name: String!) { deleteProject(name: $name) { name } }"
PROJECT = """query($name: String!) { project(name: $name) {
  name url envVars { key value } domains { hostname url default } applicationCount
  applications(first: 5) { number } liveApplication { number }
  settings { replicas { processType replicas } memoryMb cpu healthCheckPath deployBranch } } }"""
SET_ENV = """mutation($p: String!, $vars: [EnvVarInput!]!) {
  setEnvVars(project: $p, vars: $vars) { project { envVars { key value } } } }"""
UNSET_ENV = "mutation($p: String!, $keys: [String!]!) { unsetEnvVars(project: $p, keys: $keys) { project { envVars { key } } } }"
ADD_DOMAIN = "mutation($p: String!, $h: String!) { addDomain(project: $p, hostname: $h) { domains { hostname } } }"
REMOVE_DOMAIN = "mutation($p: String!, $h: String!) { removeDomain(project: $p, hostname: $h) { domains { hostname } } }"
ADD_KEY = "mutation($k: String!, $t: String) { addSshKey(publicKey: $k, title: $t) { id title fingerprint } }"
REMOVE_KEY = "mutation($id: ID!) { removeSshKey(id: $id) { id } }"
KEYS = "{ sshKeys { id title fingerprint } }"


async def new_project(account: Account) -> str:
    name = unique("p")
    await account.api(CREATE, name=name)
    return name


async def test_project_lifecycle(alice: Account) -> None:
    name = unique("app")
    created = (await alice.api(CREATE, name=name))["createProject"]
    assert created["url"] == f"http://{name}.localhost:8080"
    project = (await alice.api(PROJECT, name=name))["project"]
    assert project["domains"] == [
        {"hostname": f"{name}.localhost", "url": created["url"], "default": True}
    ]
    assert project["applications"] == [] and project["liveApplication"] is None
    assert project["settings"]["replicas"] == [{"processType": "web", "replicas": 1}]
    assert name in [p["name"] for p in (await alice.api("{ projects { name } }"))["projects"]]
    assert (await alice.api(DELETE, name=name))["deleteProject"]["name"] == name
    assert (await alice.api.error(PROJECT, name=name)).code == "NOT_FOUND"
    assert (await alice.api.error(DELETE, name=name)).code == "NOT_FOUND"


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "A-upper",
        "1starts-digit",
        "ends-",
        "has_underscore",
        "x" * 41,
        "double--dash",
        "api",
        "dots.in",
        "",
    ],
)
async def test_project_name_rules(server: Server, alice: Account, name: str) -> None:
    err = await alice.api.error(CREATE, name=name)
    assert (err.code, err.field) == ("VALIDATION", "name")
    rows = await server.db.fetch("SELECT count(*) FROM project WHERE name = $1", name)
    assert rows[0][0] == 0


async def test_project_name_unique_across_clients(alice: Account, bob: Account) -> None:
    name = await new_project(alice)
    err = await bob.api.error(CREATE, name=name)
    assert (err.code, err.field) == ("CONFLICT", "name")
    assert name not in [p["name"] for p in (await bob.api("{ projects { name } }"))["projects"]]


async def test_env_vars_set_update_unset_and_encrypted_at_rest(
    server: Server, alice: Account
) -> None:
    name = await new_project(alice)
    tricky = "a=b c ünïcødé \"quoted\" 'single' $HOME \\n"
    data = await alice.api(
        SET_ENV,
        p=name,
        vars=[
            {"key": "DATABASE_URL", "value": "postgres://u:secret@h/db"},
            {"key": "TRICKY", "value": tricky},
        ],
    )
    env = {v["key"]: v["value"] for v in data["setEnvVars"]["project"]["envVars"]}
    assert env == {"DATABASE_URL": "postgres://u:secret@h/db", "TRICKY": tricky}
    rows = await server.db.fetch("SELECT value_encrypted FROM env_var")
    assert all("secret@h" not in r[0] and "ünïcødé" not in r[0] for r in rows)
    data = await alice.api(SET_ENV, p=name, vars=[{"key": "TRICKY", "value": "new"}])
    assert {v["key"]: v["value"] for v in data["setEnvVars"]["project"]["envVars"]}[
        "TRICKY"
    ] == "new"
    data = await alice.api(UNSET_ENV, p=name, keys=["TRICKY"])
    assert [v["key"] for v in data["unsetEnvVars"]["project"]["envVars"]] == ["DATABASE_URL"]


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("lower-dash", "x", "key"),
        ("1DIGIT", "x", "key"),
        ("HAS-DASH", "x", "key"),
        ("PORT", "80", "key"),
        ("PAASTECH_APP", "x", "key"),
        ("K" * 129, "x", "key"),
        ("BIG", "x" * 40_000, "value"),
        ("NUL", "a\x00b", "value"),
    ],
)
async def test_env_var_rules_all_or_nothing(
    alice: Account, key: str, value: str, field: str
) -> None:
    name = await new_project(alice)
    await alice.api(SET_ENV, p=name, vars=[{"key": "KEEP", "value": "1"}])
    err = await alice.api.error(
        SET_ENV, p=name, vars=[{"key": "GOOD", "value": "ok"}, {"key": key, "value": value}]
    )
    assert (err.code, err.field) == ("VALIDATION", field)
    env = (await alice.api(PROJECT, name=name))["project"]["envVars"]
    assert env == [{"key": "KEEP", "value": "1"}]


async def test_env_unset_unknown_and_empty(alice: Account) -> None:
    name = await new_project(alice)
    await alice.api(SET_ENV, p=name, vars=[{"key": "KEEP", "value": "1"}])
    err = await alice.api.error(UNSET_ENV, p=name, keys=["KEEP", "MISSING"])
    assert (err.code, err.field) == ("NOT_FOUND", "keys")
    assert (await alice.api.error(UNSET_ENV, p=name, keys=[])).code == "VALIDATION"
    assert (await alice.api.error(SET_ENV, p=name, vars=[])).code == "VALIDATION"
    assert (await alice.api(PROJECT, name=name))["project"]["envVars"] == [
        {"key": "KEEP", "value": "1"}
    ]


async def test_domains_add_remove(alice: Account) -> None:
    name = await new_project(alice)
    host = f"{unique('www')}.example.com"
    data = await alice.api(ADD_DOMAIN, p=name, h=host.upper() + ".")
    assert [d["hostname"] for d in data["addDomain"]["domains"]] == [f"{name}.localhost", host]
    sub = f"www.{name}.localhost"
    await alice.api(ADD_DOMAIN, p=name, h=sub)
    data = await alice.api(REMOVE_DOMAIN, p=name, h=host)
    assert [d["hostname"] for d in data["removeDomain"]["domains"]] == [f"{name}.localhost", sub]
    err = await alice.api.error(REMOVE_DOMAIN, p=name, h=host)
    assert (err.code, err.field) == ("NOT_FOUND", "hostname")


@pytest.mark.parametrize(
    ("hostname", "code"),
    [
        ("nodot", "VALIDATION"),
        ("-bad.example.com", "VALIDATION"),
        ("bad_.example.com", "VALIDATION"),
        ("a..example.com", "VALIDATION"),
        ("x" * 64 + ".example.com", "VALIDATION"),
        ("127.0.0.1", "VALIDATION"),
        ("other.localhost", "VALIDATION"),
        ("localhost", "VALIDATION"),
        ("OWN", "CONFLICT"),
    ],
)
async def test_domain_rules(alice: Account, hostname: str, code: str) -> None:
    name = await new_project(alice)
    hostname = f"{name}.localhost" if hostname == "OWN" else hostname
    err = await alice.api.error(ADD_DOMAIN, p=name, h=hostname)
    assert (err.code, err.field) == (code, "hostname")
    domains = (await alice.api(PROJECT, name=name))["project"]["domains"]
    assert [d["hostname"] for d in domains] == [f"{name}.localhost"]


async def test_domain_unique_across_clients(alice: Account, bob: Account) -> None:
    mine, theirs = await new_project(alice), await new_project(bob)
    host = f"{unique('shop')}.example.org"
    await alice.api(ADD_DOMAIN, p=mine, h=host)
    err = await bob.api.error(ADD_DOMAIN, p=theirs, h=host)
    assert (err.code, err.field) == ("CONFLICT", "hostname")


async def test_ssh_keys(alice: Account) -> None:
    pub = new_public_key(comment="alice@laptop")
    key = (await alice.api(ADD_KEY, k=pub, t=None))["addSshKey"]
    assert key["title"] == "alice@laptop" and key["fingerprint"].startswith("SHA256:")
    rsa = (await alice.api(ADD_KEY, k=new_public_key("ssh-rsa"), t="work"))["addSshKey"]
    assert rsa["title"] == "work"
    keys = (await alice.api(KEYS))["sshKeys"]
    assert [k["id"] for k in keys] == [key["id"], rsa["id"]]
    assert (await alice.api(REMOVE_KEY, id=key["id"]))["removeSshKey"]["id"] == key["id"]
    assert [k["id"] for k in (await alice.api(KEYS))["sshKeys"]] == [rsa["id"]]
    assert (await alice.api.error(REMOVE_KEY, id=key["id"])).code == "NOT_FOUND"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not a key",
        "ssh-ed25519 AAAAnotbase64!!",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== truncated",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "KEY1\nKEY2",
    ],
)
async def test_invalid_ssh_keys_refused(alice: Account, bad: str) -> None:
    if bad == "KEY1\nKEY2":
        bad = new_public_key() + "\n" + new_public_key()
    err = await alice.api.error(ADD_KEY, k=bad, t=None)
    assert (err.code, err.field) == ("VALIDATION", "publicKey")
    assert (await alice.api(KEYS))["sshKeys"] == []


async def test_ssh_key_belongs_to_one_client(alice: Account, bob: Account) -> None:
    pub = new_public_key()
    await alice.api(ADD_KEY, k=pub, t="a")
    err = await bob.api.error(ADD_KEY, k=pub, t="b")
    assert (err.code, err.field) == ("CONFLICT", "publicKey")
    err = await alice.api.error(ADD_KEY, k=pub, t="again")
    assert err.code == "CONFLICT"
    assert (await bob.api(KEYS))["sshKeys"] == []
