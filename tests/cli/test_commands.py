"""Every command as a subprocess against a real API server (SQLite, no Docker): happy paths and
bad paths, output, --json and exit codes (usage 2, auth 3, not found 4, failure 1)."""

from __future__ import annotations

import json
import secrets
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli.api_setup import create_project, sign_up
from tests.cli.conftest import PASSWORD, Cli, new_cli


# Signed up through the API (tests/cli/api_setup.py): most tests here are about other commands;
# signup and login are tested as commands in test_signup_login_whoami_logout and
# test_signup_and_login_bad_input, which sign up with `paastech signup`.
@pytest.fixture
def user(cli: Cli) -> Cli:
    """A signed-up, logged-in user."""
    sign_up(cli)
    return cli


@pytest.fixture
def other(api_url: str, tmp_path: Path) -> Cli:
    """Another signed-up Client."""
    c = new_cli(api_url, tmp_path)
    sign_up(c)
    return c


# -- account ------------------------------------------------------------------------------------


def test_help_everywhere(cli: Cli) -> None:
    top = cli.ok("--help")
    for command in (
        "signup",
        "login",
        "logout",
        "whoami",
        "tokens:create",
        "keys:add",
        "projects:create",
        "projects:delete",
        "git:remote",
        "releases",
        "rollback",
        "ps",
        "scale",
        "resources",
        "env:set",
        "env:unset",
        "domains:add",
        "logs",
    ):
        assert command in top.out
        sub = cli.ok(command, "--help")
        assert "Usage: paastech " + command in sub.out
    assert "completion" in top.out
    assert "PAASTECH_API_URL" in top.out


def test_usage_errors_exit_2(user: Cli) -> None:
    user.fails(2, "no-such-command")
    user.fails(2, "scale", "-p", "x", "web")
    user.fails(2, "env:set", "-p", "x", "NOEQUALS")
    user.fails(2, "resources", "-p", "x", "--memory", "lots")
    user.fails(2, "logs", "3", "-p", "x")
    user.fails(2, "releases", "--num", "0", "-p", "x")


def test_not_logged_in_exits_3(cli: Cli) -> None:
    for args in (
        ("whoami",),
        ("tokens",),
        ("keys",),
        ("projects",),
        ("projects:create", "hello"),
        ("releases", "-p", "hello"),
        ("env", "-p", "hello"),
        ("env:set", "-p", "hello", "A=1"),
        ("logs", "-p", "hello"),
        ("ps", "-p", "hello"),
    ):
        result = cli.fails(3, *args)
        assert result.err == "error: not logged in: run `paastech login` (or set PAASTECH_TOKEN)\n"
    bad = Cli(cli.api_url, cli.home, {"PAASTECH_TOKEN": "pt_not-a-real-token"})
    assert "invalid, expired or revoked" in bad.fails(3, "whoami").err
    assert "invalid, expired or revoked" in bad.fails(3, "logs", "-p", "hello").err


def test_api_unreachable_exits_1(cli: Cli) -> None:
    down = Cli("http://127.0.0.1:9/graphql", cli.home, {"PAASTECH_TOKEN": "pt_x"})
    result = down.fails(1, "whoami")
    assert result.err.startswith("error: cannot reach the PaaSTech API at http://127.0.0.1:9/")
    assert result.err.count("\n") == 1


def test_signup_login_whoami_logout(cli: Cli) -> None:
    username = cli.signup()
    creds = cli.config_home / "paastech" / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    stored = json.loads(creds.read_text())["credentials"][cli.api_url]
    assert stored["username"] == username and stored["token"].startswith("pt_")
    assert cli.ok("whoami").out.strip() == f"{username} <{username}@example.com>"
    me = cli.ok("whoami", "--json").json()
    assert (me["username"], me["email"]) == (username, f"{username}@example.com")
    assert set(me) == {"id", "username", "email", "createdAt"}

    # The stored token is a named API token; the login session was given back.
    tokens = cli.ok("tokens", "--json").json()
    assert [t["kind"] for t in tokens] == ["API"]
    assert tokens[0]["current"] is True and tokens[0]["id"] == stored["tokenId"]

    old_token = stored["token"]
    cli.ok("logout")
    assert cli.api_url not in json.loads(creds.read_text())["credentials"]
    cli.fails(3, "whoami")
    revoked = Cli(cli.api_url, cli.home, {"PAASTECH_TOKEN": old_token})
    revoked.fails(3, "whoami")
    assert "Not logged in" in cli.ok("logout").out

    # Log in again with the username, then with the email.
    cli.ok("login", "--login", username, input=f"{PASSWORD}\n")
    assert cli.ok("whoami").out.startswith(username)
    cli.ok("login", input=f"{username}@example.com\n{PASSWORD}\n")
    # Each login revoked this machine's previous token: tokens do not pile up (issue 19).
    assert len(cli.ok("tokens", "--json").json()) == 1


def test_signup_and_login_bad_input(cli: Cli, other: Cli) -> None:
    result = cli.fails(
        1, "signup", "--email", "nope", "--username", "abc", input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.err == "error: email must look like name@example.com\n"
    # A bad password is asked again; when stdin runs out, that is a usage error.
    result = cli.fails(
        2, "signup", "--email", "a@example.com", "--username", "abc", input="short\nshort\n"
    )
    assert "password must be at least 10 characters; try again" in result.err
    taken = other.ok("whoami", "--json").json()["username"]
    result = cli.fails(
        1,
        "signup",
        "--email",
        f"new{secrets.token_hex(3)}@example.com",
        "--username",
        taken,
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    # The password rule is stated before the password is asked; then the API's answer.
    assert result.err.startswith("Password: at least 10 characters")
    assert result.err.endswith("\nerror: this username is taken\n")
    result = cli.fails(3, "login", "-l", taken, input="wrong-password-1\n")
    assert result.err == "error: wrong username/email or password\n"
    assert not (cli.config_home / "paastech" / "credentials.json").exists()
    cli.fails(2, "login", "-l", taken)  # no password on stdin


def test_tokens_create_use_revoke(user: Cli, other: Cli) -> None:
    created = user.ok("tokens:create", "ci-bot", "--json").json()
    assert created["token"].startswith("pt_") and created["name"] == "ci-bot"
    assert created["kind"] == "API"
    plain = user.ok("tokens:create", "deploy-bot", "--expires-in-days", "7")
    token = plain.out.strip()
    assert token.startswith("pt_") and "shown only once" in plain.err
    # PAASTECH_TOKEN overrides the stored token.
    as_bot = Cli(user.api_url, user.home, {"PAASTECH_TOKEN": token})
    assert as_bot.ok("whoami").out == user.ok("whoami").out
    table = user.ok("tokens").out
    for column in ("id", "name", "kind", "created", "last used", "expires"):
        assert column in table
    assert "ci-bot" in table and "deploy-bot" in table
    rows = {t["name"]: t for t in user.ok("tokens", "--json").json()}
    assert rows["deploy-bot"]["expiresAt"] is not None
    assert set(rows["ci-bot"]) == {
        "id",
        "name",
        "kind",
        "createdAt",
        "lastUsedAt",
        "expiresAt",
        "current",
    }

    assert "Revoked token" in user.ok("tokens:revoke", rows["deploy-bot"]["id"]).out
    as_bot.fails(3, "whoami")
    user.fails(1, "tokens:create", "ci-bot")  # CONFLICT: same name
    user.fails(4, "tokens:revoke", "999999")
    user.fails(4, "tokens:revoke", "not-a-number")
    # Another Client's token is not found, and keeps working.
    theirs = other.ok("tokens", "--json").json()[0]["id"]
    assert user.fails(4, "tokens:revoke", theirs).err == "error: token not found\n"
    other.ok("whoami")


# -- keys ---------------------------------------------------------------------------------------


def keygen(path: Path, comment: str = "me@laptop") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_name(path.name + ".pub")


def test_keys_add_list_remove(user: Cli, other: Cli) -> None:
    assert user.ok("keys", "--json").json() == []
    user.fails(2, "keys:add")  # no ~/.ssh/id_*.pub yet
    keygen(user.home / ".ssh" / "id_rsa", "rsa-but-ed25519")  # the name decides the order only
    keygen(user.home / ".ssh" / "id_ed25519")
    added = user.ok("keys:add")
    assert "'me@laptop'" in added.out  # id_ed25519.pub comes first
    extra = keygen(user.home / "work.key", "work")
    user.ok("keys:add", str(extra), "--title", "work laptop")
    keys = user.ok("keys", "--json").json()
    assert [k["title"] for k in keys] == ["me@laptop", "work laptop"]
    assert all(k["fingerprint"].startswith("SHA256:") for k in keys)
    table = user.ok("keys").out
    assert "fingerprint" in table and keys[0]["fingerprint"] in table

    assert user.fails(1, "keys:add", str(extra)).err == "error: this key is already registered\n"
    private = user.fails(2, "keys:add", str(user.home / "work.key"))
    assert "private key" in private.err
    (user.home / "junk.pub").write_text("not a key")
    assert (
        "not a valid OpenSSH public key"
        in user.fails(1, "keys:add", str(user.home / "junk.pub")).err
    )
    user.fails(2, "keys:add", str(user.home / "missing.pub"))

    assert other.fails(4, "keys:remove", keys[0]["id"]).err == "error: SSH key not found\n"
    user.ok("keys:remove", keys[0]["id"])
    assert [k["title"] for k in user.ok("keys", "--json").json()] == ["work laptop"]
    user.fails(4, "keys:remove", keys[0]["id"])


# -- projects -----------------------------------------------------------------------------------


def name() -> str:
    return f"c-{secrets.token_hex(4)}"


def git_repo(cli: Cli) -> Path:
    repo = cli.home / f"repo-{secrets.token_hex(2)}"
    repo.mkdir()
    cli.git("init", "-q", "-b", "main", cwd=repo)
    return repo


def test_projects_create_in_git_repo_adds_remote(user: Cli) -> None:
    project = name()
    repo = git_repo(user)
    created = user.ok("projects:create", project, cwd=repo)
    info = user.ok("projects:info", "--json", cwd=repo).json()  # found from the remote
    assert info["name"] == project
    remote = user.git("remote", "get-url", "paastech", cwd=repo).stdout.strip()
    assert remote == info["gitUrl"] and remote.endswith(f"/{project}.git")
    assert f"git remote paastech added: {remote}" in created.out
    assert info["url"] in created.out

    # git:remote fixes a wrong remote; inside the repo, -p wins over the remote.
    user.git("remote", "set-url", "paastech", "ssh://git@elsewhere/other.git", cwd=repo)
    assert "updated" in user.ok("git:remote", "-p", project, cwd=repo).out
    assert user.git("remote", "get-url", "paastech", cwd=repo).stdout.strip() == remote
    assert "unchanged" in user.ok("git:remote", "-p", project, cwd=repo).out
    # Without -p it would read the remote it is about to set: the project is required.
    bare = user.fails(2, "git:remote", cwd=repo)
    assert bare.err == "error: give the project: paastech git:remote -p NAME\n"
    assert user.fails(1, "git:remote", "-p", project).err.startswith("error: not inside a git")

    # Outside a repo: no remote, and no project to guess.
    outside = user.ok("projects:create", name(), "--json").json()
    assert set(outside) == {"name", "url", "gitUrl", "createdAt"}
    assert "no project" in user.fails(2, "projects:info").err


def test_projects_list_info_json_matches_table(user: Cli) -> None:
    project = name()
    create_project(user, project)
    rows = user.ok("projects", "--json").json()
    row = next(r for r in rows if r["name"] == project)
    assert set(row) == {"name", "url", "release", "status", "state", "createdAt"}
    assert (row["release"], row["status"], row["state"]) == (None, None, "NEW")
    table = user.ok("projects").out
    for column in ("name", "url", "release", "state", "created"):
        assert column in table
    assert project in table and row["url"] in table

    info = user.ok("projects:info", "-p", project, "--json").json()
    assert info["scale"] == {"web": 1} and info["domains"] == [f"{project}.localhost"]
    assert (info["memoryMb"], info["cpu"], info["releases"]) == (256, 0.5, 0)
    text = user.ok("projects:info", "-p", project).out
    for label in ("name:", "url:", "git url:", "release:", "domains:", "scale:", "memory:"):
        assert label in text
    assert "none live" in text


def test_projects_bad_paths(user: Cli, other: Cli) -> None:
    project = name()
    create_project(user, project)
    assert "project name must be" in user.fails(1, "projects:create", "Bad_Name").err
    assert "reserved" in user.fails(1, "projects:create", "admin").err
    taken = user.fails(1, "projects:create", project)
    assert "CONFLICT" not in taken.err and taken.err.startswith("error: ")
    # Another Client's project: not found, for every project command.
    for args in (
        ("projects:info",),
        ("releases",),
        ("env",),
        ("env:set", "A=1"),
        ("env:unset", "A"),
        ("domains",),
        ("domains:add", "www.example.com"),
        ("scale", "web=2"),
        ("resources",),
        ("resources", "--memory", "512m"),
        ("deploy",),
        ("rollback",),
        ("restart",),
        ("restart", "web.1"),
        ("ps:restart", "web"),
        ("stop",),
        ("start",),
        ("logs",),
        ("logs", "--build"),
        ("projects:delete", "--confirm", project),
    ):
        result = other.fails(4, *args, "-p", project)
        assert result.err == f"error: project '{project}' not found\n", result
    assert user.ok("projects:info", "-p", project, "--json").json()["name"] == project


def test_projects_delete_asks_for_the_name(user: Cli) -> None:
    project = name()
    repo = git_repo(user)
    user.ok("projects:create", project, cwd=repo)
    wrong = user.fails(1, "projects:delete", cwd=repo, input="not-it\n")
    assert "does not match" in wrong.err and "nothing deleted" in wrong.err
    user.fails(1, "projects:delete", "-p", project, "--confirm", "other")
    assert project in [p["name"] for p in user.ok("projects", "--json").json()]
    done = user.ok("projects:delete", cwd=repo, input=f"{project}\n")
    assert f"Deleted {project}" in done.out
    assert "remote paastech removed" in done.err
    assert project not in [p["name"] for p in user.ok("projects", "--json").json()]
    user.fails(4, "projects:delete", "-p", project, "--confirm", project)


# -- config -------------------------------------------------------------------------------------


def test_env_set_list_unset(user: Cli, tmp_path: Path) -> None:
    project = name()
    create_project(user, project)
    pem = tmp_path / "key.pem"
    pem.write_text("-----BEGIN KEY-----\nabc=def\n-----END KEY-----\n")
    result = user.ok(
        "env:set",
        "-p",
        project,
        "DATABASE_URL=postgres://u:p@h/db?x=1",
        "GREETING=héllo wörld ✓",
        "EMPTY=",
        f"CERT=@{pem}",
    )
    assert "Set DATABASE_URL, GREETING, EMPTY, CERT" in result.out
    assert "nothing is running yet" in result.err  # no release without a running one

    hidden = user.ok("env", "-p", project)
    assert "DATABASE_URL" in hidden.out and "postgres://" not in hidden.out
    shown = user.ok("env", "-p", project, "--reveal")
    assert "postgres://u:p@h/db?x=1" in shown.out and "héllo wörld ✓" in shown.out
    values = {r["key"]: r["value"] for r in user.ok("env", "-p", project, "--json", "-r").json()}
    assert values == {
        "CERT": pem.read_text(),
        "DATABASE_URL": "postgres://u:p@h/db?x=1",
        "EMPTY": "",
        "GREETING": "héllo wörld ✓",
    }
    assert all(r["value"] is None for r in user.ok("env", "-p", project, "--json").json())

    bad = user.fails(2, "env:set", "-p", project, "9lower=1", "GOOD=1")
    assert (
        "invalid env var name '9lower': use letters, digits and '_', not starting with a digit"
        in bad.err
    )
    assert "reserved" in user.fails(2, "env:set", "-p", project, "PORT=1").err
    assert "GOOD" not in [r["key"] for r in user.ok("env", "-p", project, "--json").json()]

    user.ok("env:unset", "-p", project, "EMPTY", "CERT")
    keys = [r["key"] for r in user.ok("env", "-p", project, "--json").json()]
    assert keys == ["DATABASE_URL", "GREETING"]
    assert user.fails(4, "env:unset", "-p", project, "NOPE").err == "error: not set: NOPE\n"


def test_domains_add_list_remove(user: Cli, other: Cli) -> None:
    project = name()
    create_project(user, project)
    host = f"{project}.example.com"
    user.ok("domains:add", "-p", project, host.upper())
    rows = user.ok("domains", "-p", project, "--json").json()
    assert [(r["hostname"], r["default"]) for r in rows] == [
        (f"{project}.localhost", True),
        (host, False),
    ]
    assert set(rows[0]) == {"hostname", "url", "default", "verified", "verification", "certificate"}
    assert rows[0]["certificate"] is None  # HTTPS is off for localhost
    assert rows[1]["verified"] is False
    record = rows[1]["verification"]["record"]
    assert record == f"_paastech-challenge.{host}"
    table = user.ok("domains", "-p", project).out
    assert host in table and rows[1]["url"] in table and f"unverified: create TXT {record}" in table
    assert "not a valid hostname" in user.fails(1, "domains:add", "-p", project, "bad").err
    # One hostname, one project: someone else cannot take it.
    theirs = name()
    create_project(other, theirs)
    assert other.fails(1, "domains:add", "-p", theirs, host).err.startswith("error: ")
    user.ok("domains:remove", "-p", project, host)
    assert len(user.ok("domains", "-p", project, "--json").json()) == 1
    user.fails(4, "domains:remove", "-p", project, host)


def test_scale_and_resources_without_a_running_release(user: Cli) -> None:
    project = name()
    create_project(user, project)
    result = user.ok("scale", "-p", project, "web=2", "worker=1")
    assert f"Scale of {project}: web=2 worker=1" in result.out
    assert "nothing is running yet" in result.err
    assert user.ok("projects:info", "-p", project, "--json").json()["scale"] == {
        "web": 2,
        "worker": 1,
    }
    bad = user.fails(1, "scale", "-p", project, "web=99")
    assert "replicas must be between" in bad.err

    assert user.ok("resources", "-p", project, "--json").json() == {"memoryMb": 256, "cpu": 0.5}
    user.ok("resources", "-p", project, "--memory", "1g", "--cpu", "1")
    assert user.ok("resources", "-p", project, "--json").json() == {"memoryMb": 1024, "cpu": 1.0}
    assert "memoryMb must be between" in user.fails(1, "resources", "-p", project, "-m", "1m").err
    assert "memory:" in user.ok("resources", "-p", project).out


def test_release_commands_before_any_push(user: Cli) -> None:
    project = name()
    create_project(user, project)
    assert user.ok("releases", "-p", project, "--json").json() == []
    assert "no releases" in user.ok("releases", "-p", project).err
    assert "push your code first" in user.fails(1, "deploy", "-p", project).err
    assert "nothing is running" in user.fails(1, "restart", "-p", project).err
    for process in ("web", "web.1", "worker.2"):
        result = user.fails(1, "restart", process, "-p", project)
        assert result.err == "error: nothing is running: deploy first\n", str(result)
    assert "nothing is running" in user.fails(1, "stop", "-p", project).err
    # Refused (CONFLICT) while a release is in progress: its help says so.
    assert "release is in progress" in " ".join(user.ok("stop", "--help").out.split())
    assert "nothing to start" in user.fails(1, "start", "-p", project).err
    assert "not found" in user.fails(4, "rollback", "7", "-p", project).err
    assert "no releases yet" in user.fails(1, "logs", "--build", "-p", project).err
    assert user.fails(4, "logs", "--build", "3", "-p", project).err.startswith("error: release v3")


@pytest.mark.parametrize("command", ["projects", "whoami", "keys", "tokens"])
def test_json_output_has_no_colour_or_decoration(user: Cli, command: str) -> None:
    out = user.ok(command, "--json").out
    json.loads(out)
    assert "\x1b[" not in out
