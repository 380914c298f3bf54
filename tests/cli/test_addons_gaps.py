"""Add-ons (issue 15), the requirements tests/cli/test_addons.py leaves out, with the same pushed
fixture app (tests/fixtures/apps/addons, through DATABASE_URL / REDIS_URL): rows survive a
redeploy by `git push` and a rollback; the servers are the versions shown, Redis with AOF on; the
credentials are encrypted at rest; a removed add-on's final backup restores into a new add-on
(write, back up, destroy, restore, read the same rows), and a backup of the other kind is
refused without changing anything."""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_addons import call, env_of
from tests.cli.test_docker import developer, releases, workdir
from tests.cli.test_docker import push as git_push
from tests.support.addon_servers import addon_containers
from tests.support.platform import Platform, cleanup_project, gitd_process, platform
from tests.support.servers import reserved_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

GITD_PORT = reserved_port()
PUSH_TIMEOUT = 600  # the fixture installs psycopg and redis from PyPI
T = TypeVar("T")


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("addons-gaps")
    with platform(data_dir, health_check_timeout_seconds=30, gitd_port=GITD_PORT) as p:
        try:
            with gitd_process(p, GITD_PORT):
                yield p
        finally:
            for project in p.projects:
                cleanup_project(project)


def until(what: str, seconds: float, probe: Callable[[], T | None]) -> T:
    """Poll ``probe`` every 0.5 s until it gives something; fail naming ``what``."""
    for _ in range(int(seconds * 2)):
        found = probe()
        if found is not None and found is not False:
            return found
        time.sleep(0.5)
    pytest.fail(f"gave up waiting {seconds:g} s: {what}")


def app_json(plat: Platform, project: str, method: str, path: str) -> dict[str, Any]:
    return until(f"{method} {path} answered", 120, lambda: call(plat, project, method, path))


def push(cli: Cli, work: Path) -> str:
    """git push; its transcript (git's stderr: the `remote:` lines)."""
    pushed = git_push(cli, work, timeout=PUSH_TIMEOUT)
    assert pushed.returncode == 0, pushed.stderr
    return pushed.stderr


def live(cli: Cli, project: str) -> int:
    """The number of the project's live (RUNNING) release."""
    running = [r["number"] for r in releases(cli, project) if r["status"] == "RUNNING"]
    assert running, releases(cli, project)
    return max(running)


def in_server(addon: str, *command: str) -> str:
    """A command in the add-on's container, as its own user (nothing is published)."""
    [container] = addon_containers(addon, running=True)
    return subprocess.run(
        ["docker", "exec", container, *command], capture_output=True, text=True, check=True
    ).stdout.strip()


@dataclass
class Owner:
    cli: Cli
    work: Path
    project: str
    pg: str
    redis: str


@pytest.fixture(scope="module")
def owner(plat: Platform, tmp_path_factory: pytest.TempPathFactory) -> Owner:
    cli = developer(plat, GITD_PORT, tmp_path_factory.mktemp("gaps-owner"))
    cli.ok("keys:add")
    project = f"gap-{secrets.token_hex(4)}"
    work = workdir(cli, "addons")
    cli.ok("projects:create", project, cwd=work)
    plat.projects.append(project)
    push(cli, work)
    pg = cli.ok("addons:create", "postgres", "-p", project, "--json", timeout=300).json()
    redis = cli.ok("addons:create", "redis", "-p", project, "--json", timeout=300).json()
    until(
        "the release with both add-on URLs live",
        240,
        lambda: (
            (call(plat, project, "GET", "/") or {}).get("addons") == ["DATABASE_URL", "REDIS_URL"]
        ),
    )
    return Owner(cli, work, project, pg["name"], redis["name"])


def notes(plat: Platform, project: str) -> list[str]:
    return app_json(plat, project, "GET", "/notes")["notes"]


def test_rows_survive_a_git_push_redeploy_and_a_rollback(plat: Platform, owner: Owner) -> None:
    body = f"lasting-{secrets.token_hex(3)}"
    app_json(plat, owner.project, "POST", f"/notes?body={body}")
    counter = app_json(plat, owner.project, "POST", "/counter")["counter"]
    before = live(owner.cli, owner.project)

    # A redeploy: a new commit of the same tree, released with the same add-on URLs. Nothing a
    # build reads changed, so the image of the first push is reused (build_reuse.py).
    owner.cli.git("commit", "-q", "--allow-empty", "-m", "redeploy", cwd=owner.work)
    transcript = push(owner.cli, owner.work)
    assert "Same source, Dockerfile and base images as v" in transcript, transcript
    assert "STEP " not in transcript, transcript
    redeployed = until(
        "the pushed release live",
        240,
        lambda: (n := live(owner.cli, owner.project)) > before and n,
    )
    assert body in notes(plat, owner.project)
    assert app_json(plat, owner.project, "GET", "/counter")["counter"] == counter

    # A rollback to the release before (the add-ons were attached then too: same URLs).
    owner.cli.ok("rollback", "-p", owner.project, timeout=300)
    assert live(owner.cli, owner.project) > redeployed
    assert body in notes(plat, owner.project)
    assert app_json(plat, owner.project, "GET", "/counter")["counter"] == counter


def test_the_servers_run_the_versions_shown_redis_with_aof(plat: Platform, owner: Owner) -> None:
    info = {
        name: owner.cli.ok("addons:info", name, "--json").json() for name in (owner.pg, owner.redis)
    }
    assert info[owner.pg]["version"] == "PostgreSQL 15"
    assert in_server(owner.pg, "psql", "-d", "app", "-Atc", "SHOW server_version").startswith("15.")
    assert info[owner.redis]["version"] == "Redis 7"
    server = in_server(owner.redis, "redis-cli", "--no-auth-warning", "INFO", "server")
    assert "redis_version:7." in server
    # Persistence on: the append-only file, fsynced every second.
    aof = in_server(owner.redis, "redis-cli", "--no-auth-warning", "CONFIG", "GET", "append*")
    settings = dict(zip(aof.split()[::2], aof.split()[1::2], strict=True))
    assert settings["appendonly"] == "yes" and settings["appendfsync"] == "everysec"


def test_credentials_are_stored_encrypted(plat: Platform, owner: Owner) -> None:
    urls = env_of(owner.cli, owner.project)
    secrets_in_urls = [
        urls["DATABASE_URL"].split(":")[2].split("@")[0],
        urls["REDIS_URL"].split(":")[2].split("@")[0],
    ]
    assert all(len(s) >= 32 for s in secrets_in_urls), secrets_in_urls
    database = plat.data_dir / "paastech.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        stored = [
            str(row[0])
            for query in (
                "SELECT password_encrypted FROM addon",
                "SELECT value_encrypted FROM env_var",
                "SELECT env_snapshot FROM application",
            )
            for row in db.execute(query)
        ]
    assert len(stored) >= 4
    for secret in secrets_in_urls:
        assert not [s for s in stored if secret in s]


BACKUPS = "pg:backups"


def test_a_destroyed_addons_final_backup_restores_into_a_new_one(
    plat: Platform, owner: Owner
) -> None:
    body = f"survivor-{secrets.token_hex(3)}"
    app_json(plat, owner.project, "POST", f"/notes?body={body}")
    kept = notes(plat, owner.project)
    owner.cli.ok("addons:destroy", owner.pg, "--confirm", owner.pg, timeout=300)
    [final] = [
        b
        for b in owner.cli.ok(BACKUPS, "--json").json()
        if b["addonName"] == owner.pg and b["kind"] == "final"
    ]
    assert final["sizeBytes"] > 0 and "DATABASE_URL" not in env_of(owner.cli, owner.project)

    # A new, empty PostgreSQL on the same project: the app's release reads it.
    new = owner.cli.ok("addons:create", "postgres", "-p", owner.project, "--json", timeout=300)
    fresh = new.json()["name"]
    assert fresh != owner.pg
    until(
        "the release on the new, empty database live",
        240,
        lambda: (call(plat, owner.project, "GET", "/notes") or {}).get("notes") == [],
    )

    # The other kind's backup: refused (field backupId), the new database unchanged.
    redis_backup = owner.cli.ok("pg:backups:capture", owner.redis, "--json", timeout=180).json()
    refused = owner.cli("pg:backups:restore", redis_backup["id"], fresh, "--confirm", fresh)
    assert refused.code != 0 and "redis backup" in refused.err, str(refused)
    assert notes(plat, owner.project) == []

    # The removed add-on's final backup, into the new one: the same rows.
    owner.cli.ok("pg:backups:restore", final["id"], fresh, "--confirm", fresh, timeout=300)
    assert notes(plat, owner.project) == kept
    assert body in kept
