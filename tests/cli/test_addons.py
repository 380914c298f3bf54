"""Add-ons (issue 15) against the whole platform (API + Pomegranate + ingress + gitd), real Docker:
a PostgreSQL and a Redis add-on used by a pushed app (tests/fixtures/apps/addons) through
DATABASE_URL / REDIS_URL; their data survives restarts and a kill -9 of Pomegranate; backups
restore; a second Client (tests/fixtures/apps/prober) reaches neither the servers nor the data nor
the backups; bad input is refused and changes nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.cli.conftest import Cli
from tests.cli.test_run import developer
from tests.support.gqlclient import Api
from tests.support.platform import (
    Platform,
    cleanup_project,
    fixture,
    gitd_process,
    platform,
)
from tests.support.servers import reserved_port

pytestmark = pytest.mark.docker

GITD_PORT = reserved_port()
PUSH_TIMEOUT = 600  # the addons fixture installs psycopg and redis from PyPI


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("addons-platform")
    with platform(
        data_dir,
        health_check_timeout_seconds=30,
        gitd_port=GITD_PORT,
        # test_the_server_is_brought_back_...: the periodic reconcile brings a killed server
        # back; every 3 s rather than the default 30 s.
        reconcile_interval_seconds=3,
    ) as p:
        try:
            yield p
        finally:
            for project in p.projects:
                cleanup_project(project)


@pytest.fixture(scope="module")
def gitd(plat: Platform) -> Iterator[int]:
    with gitd_process(plat, GITD_PORT):
        yield GITD_PORT


def push(plat: Platform, cli: Cli, app: str, prefix: str) -> str:
    project = f"{prefix}-{secrets.token_hex(4)}"
    work = cli.home / f"app-{secrets.token_hex(2)}"
    shutil.copytree(fixture(app), work)
    cli.git("init", "-q", "-b", "main", cwd=work)
    cli.git("add", "-A", cwd=work)
    cli.git("commit", "-q", "-m", "app", cwd=work)
    cli.ok("projects:create", project, cwd=work)
    plat.projects.append(project)
    pushed = subprocess.run(
        ["git", "push", "paastech", "main"],
        cwd=work,
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=PUSH_TIMEOUT,
    )
    assert pushed.returncode == 0, pushed.stderr
    return project


def wait_for(condition: Any, within: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"not within {within:g} s: {what} (last: {last!r})")


def call(plat: Platform, project: str, method: str, path: str) -> dict[str, Any] | None:
    """The app's JSON answer through the ingress, None when it does not answer 200."""
    try:
        response = httpx.request(
            method,
            f"http://127.0.0.1:{plat.ingress_port}{path}",
            headers={"Host": f"{project}.localhost"},
            timeout=15,
        )
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def app_json(plat: Platform, project: str, method: str, path: str) -> dict[str, Any]:
    return wait_for(lambda: call(plat, project, method, path), 60, f"{method} {path} answered")


def token_of(cli: Cli) -> str:
    return cli.ok("tokens:create", f"t{secrets.token_hex(3)}", "--json").json()["token"]


def gql(plat: Platform, token: str, query: str, **variables: Any) -> dict[str, Any]:
    return asyncio.run(Api(plat.api_url, token)(query, **variables))


def gql_error(plat: Platform, token: str, query: str, **variables: Any) -> Any:
    return asyncio.run(Api(plat.api_url, token).error(query, **variables))


def docker_names(kind: str, addon: str) -> list[str]:
    """Names of the add-on's containers or volumes, as the docker CLI lists them by label."""
    command = ["ps", "-a", "--format", "{{.Names}}"] if kind == "container" else []
    command = command or ["volume", "ls", "--format", "{{.Name}}"]
    return subprocess.run(
        ["docker", *command, "--filter", f"label=paastech.addon={addon}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def env_of(cli: Cli, project: str) -> dict[str, str]:
    rows = cli.ok("env", "-p", project, "--reveal", "--json").json()
    return {row["key"]: row["value"] for row in rows}


@dataclass
class Owner:
    cli: Cli
    token: str
    project: str
    pg: str
    redis: str


ADDONS = "{ addons { name kind attachments { project } } }"


@pytest.fixture(scope="module")
def owner(plat: Platform, gitd: int, tmp_path_factory: pytest.TempPathFactory) -> Owner:
    cli = developer(plat, tmp_path_factory.mktemp("addons-owner"))
    project = push(plat, cli, "addons", "ad")
    created = cli.ok("addons:create", "postgres", "-p", project, "--json", timeout=180).json()
    assert created["configVar"] == "DATABASE_URL" and created["kind"] == "POSTGRES"
    redis = cli.ok("addons:create", "redis", "-p", project, "--json", timeout=180).json()
    assert redis["configVar"] == "REDIS_URL"
    # Each attachment is a new release with the URL in the app's env.
    wait_for(
        lambda: (
            (call(plat, project, "GET", "/") or {}).get("addons") == ["DATABASE_URL", "REDIS_URL"]
        ),
        180,
        "the release with both add-on URLs live",
    )
    return Owner(cli, token_of(cli), project, created["name"], redis["name"])


def notes(plat: Platform, project: str) -> list[str]:
    return app_json(plat, project, "GET", "/notes")["notes"]


# ---------------------------------------------------------------------------------- lifecycle


def test_the_app_reads_and_writes_both_addons(plat: Platform, owner: Owner) -> None:
    body = f"note-{secrets.token_hex(3)}"
    assert body in app_json(plat, owner.project, "POST", f"/notes?body={body}")["notes"]
    before = app_json(plat, owner.project, "GET", "/counter")["counter"] or 0
    assert app_json(plat, owner.project, "POST", "/counter")["counter"] == before + 1
    info = owner.cli.ok("addons:info", owner.pg, "--json").json()
    assert info["version"] == "PostgreSQL 15"
    assert info["server"]["running"] is True
    assert info["server"]["networks"] == [owner.project]
    assert [a["project"] for a in info["attachments"]] == [owner.project]
    # The server runs hardened: non-root, no capabilities, no new privileges, limits, a volume.
    [container] = docker_names("container", owner.pg)
    inspected = json.loads(
        subprocess.run(["docker", "inspect", container], capture_output=True, check=True).stdout
    )[0]
    host = inspected["HostConfig"]
    assert inspected["Config"]["User"] == "postgres"
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges=true" in host["SecurityOpt"]
    assert host["Memory"] == info["memoryMb"] * 1024 * 1024 and host["PidsLimit"] > 0
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert [m["Type"] for m in inspected["Mounts"]] == ["volume"]
    assert not host.get("PortBindings")  # never published on the host


def test_rows_survive_restart_and_a_kill_9_of_pomegranate(plat: Platform, owner: Owner) -> None:
    body = f"durable-{secrets.token_hex(3)}"
    app_json(plat, owner.project, "POST", f"/notes?body={body}")
    counter = app_json(plat, owner.project, "POST", "/counter")["counter"]
    owner.cli.ok("restart", "-p", owner.project, timeout=240)
    assert body in notes(plat, owner.project)
    plat.pomegranate.kill9()
    plat.pomegranate.start()
    # New connections after the restarts still find the same data.
    assert body in notes(plat, owner.project)
    assert app_json(plat, owner.project, "GET", "/counter")["counter"] == counter
    state = wait_for(
        lambda: (owner.cli("addons:info", owner.pg, "--json").json() or {}).get("server"),
        60,
        "Pomegranate answering about the add-on again",
    )
    assert state["running"] is True


def test_the_server_is_brought_back_with_its_data_after_its_container_is_killed(
    plat: Platform, owner: Owner
) -> None:
    body = f"after-kill-{secrets.token_hex(3)}"
    app_json(plat, owner.project, "POST", f"/notes?body={body}")
    [container] = docker_names("container", owner.pg)
    subprocess.run(["docker", "kill", container], capture_output=True, check=True)
    # `docker kill` is a manual stop for the engine (its restart policy, unless-stopped, leaves
    # it stopped): the API's periodic reconcile starts it again.
    wait_for(lambda: body in (call(plat, owner.project, "GET", "/notes") or {}).get("notes", []),
             120, "the notes readable again")  # fmt: skip


def test_postgres_backup_destroy_restore_round_trip(plat: Platform, owner: Owner) -> None:
    body = f"kept-{secrets.token_hex(3)}"
    app_json(plat, owner.project, "POST", f"/notes?body={body}")
    backup = owner.cli.ok("pg:backups:capture", owner.pg, "--json", timeout=120).json()
    assert backup["kind"] == "manual" and backup["sizeBytes"] > 0
    listed = owner.cli.ok("pg:backups", owner.pg, "--json").json()
    assert backup["id"] in [b["id"] for b in listed]
    # Downloaded through the API with the owner's token: a pg_dump custom-format archive.
    target = owner.cli.home / "pg.dump"
    owner.cli.ok("pg:backups:download", backup["id"], "-o", str(target))
    assert target.read_bytes()[:5] == b"PGDMP"
    assert app_json(plat, owner.project, "DELETE", "/notes")["notes"] == []
    # A restore without the confirmation changes nothing.
    err = owner.cli.fails(2, "pg:backups:restore", backup["id"], owner.pg).err
    assert f"--confirm {owner.pg}" in err
    assert notes(plat, owner.project) == []
    owner.cli.ok("pg:backups:restore", backup["id"], owner.pg, "--confirm", owner.pg, timeout=180)
    assert body in notes(plat, owner.project)


def test_redis_backup_restore_round_trip(plat: Platform, owner: Owner) -> None:
    value = app_json(plat, owner.project, "POST", "/counter")["counter"]
    backup = owner.cli.ok("pg:backups:capture", owner.redis, "--json", timeout=120).json()
    target = owner.cli.home / "redis.rdb"
    owner.cli.ok("pg:backups:download", backup["id"], "-o", str(target))
    assert target.read_bytes()[:5] == b"REDIS"
    assert app_json(plat, owner.project, "DELETE", "/counter")["counter"] is None
    owner.cli.ok(
        "pg:backups:restore", backup["id"], owner.redis, "--confirm", owner.redis, timeout=180
    )
    assert app_json(plat, owner.project, "GET", "/counter")["counter"] == value


def test_psql_and_redis_cli_run_against_the_addons(plat: Platform, owner: Owner) -> None:
    body = f"psql-{secrets.token_hex(3)}"
    app_json(plat, owner.project, "POST", f"/notes?body={body}")
    out = owner.cli.ok(
        "pg:psql", owner.pg, "--", "-Atc", "SELECT body FROM notes ORDER BY id", timeout=120
    ).out
    assert body in out.split()
    value = app_json(plat, owner.project, "POST", "/counter")["counter"]
    out = owner.cli.ok("redis:cli", owner.redis, "--", "GET", "counter", timeout=120).out
    assert out.strip() == str(value)


def test_attach_to_a_second_project_and_detach(plat: Platform, owner: Owner) -> None:
    second = f"ad2-{secrets.token_hex(4)}"
    owner.cli.ok("projects:create", second)
    plat.projects.append(second)
    attached = owner.cli.ok("addons:attach", owner.pg, "-p", second, timeout=120)
    # Nothing runs in the second project: the API answered no release, and the CLI says so.
    assert "nothing is running yet" in attached.err
    assert (
        env_of(owner.cli, second)["DATABASE_URL"]
        == env_of(owner.cli, owner.project)["DATABASE_URL"]
    )
    info = owner.cli.ok("addons:info", owner.pg, "--json").json()
    assert sorted(info["server"]["networks"]) == sorted([owner.project, second])
    owner.cli.ok("addons:detach", owner.pg, "-p", second, timeout=120)
    assert "DATABASE_URL" not in env_of(owner.cli, second)
    info = owner.cli.ok("addons:info", owner.pg, "--json").json()
    assert info["server"]["networks"] == [owner.project]
    # The first project still works.
    assert isinstance(notes(plat, owner.project), list)


def test_rotating_credentials_releases_the_app_with_the_new_password(
    plat: Platform, owner: Owner
) -> None:
    before = env_of(owner.cli, owner.project)["DATABASE_URL"]
    body = f"rotated-{secrets.token_hex(3)}"
    app_json(plat, owner.project, "POST", f"/notes?body={body}")
    owner.cli.ok("addons:rotate", owner.pg, timeout=180)
    after = env_of(owner.cli, owner.project)["DATABASE_URL"]
    assert after != before
    # The old password no longer works on the server; the new release uses the new one.
    old_password = before.split(":")[2].split("@")[0]
    [container] = docker_names("container", owner.pg)
    probe = subprocess.run(
        ["docker", "exec", "-e", f"PGPASSWORD={old_password}", container,
         "psql", "-h", "127.0.0.1", "-U", "app", "-d", "app", "-Atc", "SELECT 1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert probe.returncode != 0 and "password authentication failed" in probe.stderr
    wait_for(
        lambda: body in (call(plat, owner.project, "GET", "/notes") or {}).get("notes", []),
        180,
        "the app reading its notes with the rotated password",
    )


# ---------------------------------------------------------------------------------- bad input


CREATE = "mutation($p: String!, $k: String!, $plan: String) { createAddon(project: $p, kind: $k, plan: $plan) { name } }"
REMOVE = "mutation($n: String!, $c: String!) { removeAddon(name: $n, confirm: $c) { name } }"
RESTORE = "mutation($n: String!, $b: ID!) { restoreAddon(name: $n, backupId: $b) { id } }"


def test_bad_input_is_refused_and_changes_nothing(plat: Platform, owner: Owner) -> None:
    before = gql(plat, owner.token, ADDONS)["addons"]
    env_before = env_of(owner.cli, owner.project)
    error = gql_error(plat, owner.token, CREATE, p=owner.project, k="mysql")
    assert (error.code, error.field) == ("VALIDATION", "kind")
    error = gql_error(plat, owner.token, CREATE, p=owner.project, k="redis", plan="enormous")
    assert (error.code, error.field) == ("VALIDATION", "plan")
    # A second PostgreSQL on the same project: its DATABASE_URL is taken.
    error = gql_error(plat, owner.token, CREATE, p=owner.project, k="postgres")
    assert error.code == "CONFLICT"
    error = gql_error(plat, owner.token, REMOVE, n=owner.pg, c="yes")
    assert (error.code, error.field) == ("VALIDATION", "confirm")
    err = owner.cli.fails(2, "addons:destroy", owner.pg).err
    assert f"--confirm {owner.pg}" in err
    assert owner.cli.fails(2, "addons:create", "mysql", "-p", owner.project).err
    assert gql(plat, owner.token, ADDONS)["addons"] == before
    assert env_of(owner.cli, owner.project) == env_before
    assert docker_names("container", owner.pg) and docker_names("volume", owner.pg)


# ---------------------------------------------------------------------------------- isolation


def test_a_second_client_reaches_neither_the_servers_nor_the_data_nor_the_backups(
    plat: Platform, owner: Owner, tmp_path_factory: pytest.TempPathFactory
) -> None:
    backup = owner.cli.ok("pg:backups:capture", owner.pg, "--json", timeout=120).json()
    attacker = developer(plat, tmp_path_factory.mktemp("addons-attacker"))
    token = token_of(attacker)
    evil = push(plat, attacker, "prober", "ev")

    # Not by name (not even resolved), not by address (another bridge network).
    answer = app_json(plat, evil, "GET", f"/resolve?host={owner.pg}")
    assert answer["resolved"] is False, answer
    [container] = docker_names("container", owner.pg)
    inspected = json.loads(
        subprocess.run(["docker", "inspect", container], capture_output=True, check=True).stdout
    )[0]
    networks = inspected["NetworkSettings"]["Networks"]
    victim_ip = networks[f"{plat.instance}.{owner.project}"]["IPAddress"]
    answer = app_json(plat, evil, "GET", f"/probe?host={victim_ip}&port=5432")
    assert answer["connected"] is False, answer
    # The positive control: the owner's app reaches it (it reads its notes through it).
    assert isinstance(notes(plat, owner.project), list)

    # The API: the add-on does not exist for the attacker.
    for query, variables in (
        ("query($n: String!) { addon(name: $n) { name } }", {"n": owner.pg}),
        (REMOVE, {"n": owner.pg, "c": owner.pg}),
        ("mutation($n: String!) { backupAddon(name: $n) { id } }", {"n": owner.pg}),
        ("mutation($n: String!) { rotateAddonCredentials(name: $n) { name } }", {"n": owner.pg}),
        (
            "mutation($n: String!, $p: String!) { attachAddon(name: $n, project: $p) { addon { name } } }",
            {"n": owner.pg, "p": evil},
        ),
    ):
        assert gql_error(plat, token, query, **variables).code == "NOT_FOUND", query
    assert gql(plat, token, "{ addonBackups { id } }")["addonBackups"] == []
    assert attacker.fails(4, "pg:backups:download", backup["id"]).err

    # Restoring the owner's backup into the attacker's own add-on: NOT_FOUND, nothing changes.
    own = attacker.ok("addons:create", "postgres", "-p", evil, "--json", timeout=180).json()
    error = gql_error(plat, token, RESTORE, n=own["name"], b=backup["id"])
    assert (error.code, error.field) == ("NOT_FOUND", "backupId")
    [own_container] = docker_names("container", own["name"])
    tables = subprocess.run(
        ["docker", "exec", own_container, "psql", "-d", "app", "-Atc",
         "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert tables.strip() == "0"

    # Destroying it (confirmed): a final backup is kept, the server and its volume are gone,
    # the project's DATABASE_URL is unset.
    attacker.ok("addons:destroy", own["name"], "--confirm", own["name"], timeout=180)
    finals = attacker.ok("pg:backups", "--json").json()
    assert [(b["addonName"], b["kind"]) for b in finals] == [(own["name"], "final")]
    assert docker_names("container", own["name"]) == []
    assert docker_names("volume", own["name"]) == []
    assert "DATABASE_URL" not in env_of(attacker, evil)
    # The owner's add-on is untouched by all of it.
    assert owner.cli.ok("addons:info", owner.pg, "--json").json()["server"]["running"] is True
