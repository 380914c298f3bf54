"""Issue 19: the CLI a Heroku user already knows. Aliases, -a/--app, suggestions, the new commands
and flags, the fixed messages, --json everywhere, completion in a real bash. Against a real API
server (SQLite, no Docker); the Docker-level parts (no-op config, domains, Ctrl-C, logs | head)
are in tests/cli/test_docker.py and tests/integration/test_ingress_platform.py."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from cli.aliases import ALIASES
from cli.app import DESTRUCTIVE
from tests.cli.api_setup import create_project, sign_up
from tests.cli.conftest import PASSWORD, Cli, new_cli


def name() -> str:
    return f"h{secrets.token_hex(4)}"


# Signed up through the API (tests/cli/api_setup.py): most tests here are about other commands;
# signup and login are tested as commands in tests/cli/test_commands.py (and
# test_signup_asks_again_per_field_with_the_rules_first here).
@pytest.fixture
def user(cli: Cli) -> Cli:
    """A signed-up, logged-in user."""
    sign_up(cli)
    return cli


# -- aliases, help, version ---------------------------------------------------------------------


def body(help_text: str) -> list[str]:
    """A command's help without its Usage line (which names the command)."""
    return [line.strip() for line in help_text.splitlines() if "Usage: paastech" not in line]


def test_every_alias_runs_its_command_and_is_hidden(cli: Cli) -> None:
    top = cli.ok("--help").out
    listed = cli.ok("help", "aliases").out
    targets: dict[str, list[str]] = {}
    for alias, target in ALIASES.items():
        # Each alias parses as its command: same options, same help text.
        alias_help = cli.ok(alias, "--help").out
        if target not in targets:
            targets[target] = body(cli.ok(target, "--help").out)
        assert f"Usage: paastech {alias} " in alias_help
        assert body(alias_help) == targets[target], alias
        # Hidden from the main help (whose command rows start with "│ NAME ").
        assert not re.search(rf"^│ {re.escape(alias)} ", top, re.M), alias
        assert alias in listed and target in listed
    assert cli.ok("help", "aliases", "--json").json() == ALIASES


def test_heroku_journey_with_aliases_and_app_flag(user: Cli) -> None:
    project = name()
    created = user.ok("create", project, "--json").json()
    assert created["name"] == project
    assert project in [p["name"] for p in user.ok("apps", "--json").json()]
    assert user.ok("apps:info", "-a", project, "--json").json()["name"] == project
    assert user.ok("info", "--app", project, "--json").json()["name"] == project

    user.ok("config:set", "-a", project, "lower_case=1", "DATABASE_URL=postgres://x")
    assert user.ok("config:get", "-a", project, "lower_case").out == "1\n"
    assert user.ok("env:get", "DATABASE_URL", "-a", project).out == "postgres://x\n"
    keys = [r["key"] for r in user.ok("config", "-a", project, "--json").json()]
    assert keys == ["DATABASE_URL", "lower_case"]
    user.ok("config:unset", "-a", project, "lower_case")
    missing = user.fails(4, "config:get", "-a", project, "lower_case")
    assert missing.err == f"error: lower_case is not set on {project}\n"

    assert user.ok("ps:scale", "-a", project, "--json").json() == {"web": 1}
    deleted = user.ok("destroy", project, "--confirm", project, "--json").json()
    assert deleted == {"name": project}
    assert project not in [p["name"] for p in user.ok("apps", "--json").json()]
    user.ok("apps:create", project)
    user.ok("apps:destroy", "-a", project, "--confirm", project)


def test_version_and_help_command(cli: Cli) -> None:
    version = cli.ok("--version").out
    assert version.startswith("paastech ") and cli.ok("-v").out == version
    assert "Usage: paastech scale " in cli.ok("help", "scale").out
    assert "Usage: paastech config:set " in cli.ok("help", "config:set").out
    assert "Usage: paastech [OPTIONS] COMMAND" in cli.ok("help").out
    assert cli.fails(2, "help", "nope").err == "error: no command 'nope': see `paastech --help`\n"


@pytest.mark.parametrize(
    "typo", ["destory", "projects:delet", "delete", "account:delet", "domains:remov", "sto"]
)
def test_suggestions_never_propose_a_destructive_command(cli: Cli, typo: str) -> None:
    err = cli.fails(2, typo).err
    assert f"no command {typo!r}" in err
    suggested = err.split("did you mean", 1)[1] if "did you mean" in err else ""
    for command in DESTRUCTIVE:
        assert command not in suggested.replace("?", " ").replace(",", " ").split(), err


def test_unknown_heroku_commands_say_what_instead(cli: Cli) -> None:
    err = cli.fails(2, "pipelines").err
    assert "no command 'pipelines': PaaSTech has no pipelines" in err
    assert "domains" not in err
    assert "did you mean projects," in cli.fails(2, "projets").err


# -- account ------------------------------------------------------------------------------------


def test_signup_asks_again_per_field_with_the_rules_first(cli: Cli) -> None:
    username = f"u{secrets.token_hex(4)}"
    result = cli.ok(
        "signup",
        input=f"not-an-email\n{username}@example.com\nBad Name\n{username}\nshort\n{PASSWORD}\n",
    )
    err = result.err
    assert err.index("Email: an address like") < err.index("email must look like")
    assert "email must look like name@example.com; try again" in err
    assert "username must be 3-32 characters" in err and "; try again" in err
    assert err.index("Password: at least 10 characters") < err.index(
        "password must be at least 10 characters; try again"
    )
    assert result.out == f"Signed up and logged in as {username}\n"
    assert cli.ok("whoami", "--json").json()["username"] == username


def test_login_revokes_this_machines_previous_token(user: Cli) -> None:
    username = user.ok("whoami", "--json").json()["username"]
    first = json.loads((user.config_home / "paastech" / "credentials.json").read_text())
    old = first["credentials"][user.api_url]["token"]
    login = user.ok("login", "-u", username, input=f"{PASSWORD}\n")
    assert "revoked this machine's previous token" in login.err
    assert len(user.ok("tokens", "--json").json()) == 1
    Cli(user.api_url, user.home, {"PAASTECH_TOKEN": old}).fails(3, "whoami")
    assert user.ok("login", "--email", f"{username}@example.com", "--json", input=f"{PASSWORD}\n")
    assert len(user.ok("tokens", "--json").json()) == 1


def test_account_password_and_delete(user: Cli, api_url: str, tmp_path: Path) -> None:
    username = user.ok("whoami", "--json").json()["username"]
    wrong = user.fails(1, "account:password", input="not-the-password-1\nnew-password-42\n")
    assert wrong.err.endswith("error: wrong password\n")
    changed = user.ok("account:password", "--json", input=f"{PASSWORD}\nnew-password-42\n")
    assert changed.json()["username"] == username
    user.ok("login", "-l", username, input="new-password-42\n")

    project = name()
    create_project(user, project)
    mismatch = user.fails(1, "account:delete", "--confirm", "someone-else")
    assert (
        mismatch.err
        == f"error: confirmation 'someone-else' does not match {username} or your email: "
        "nothing deleted\n"
    )
    user.fails(1, "account:delete", "--confirm", username, input="wrong-password-9\n")
    assert user.ok("whoami").out.startswith(username)  # nothing changed
    deleted = user.ok("account:delete", "--confirm", username, "--json", input="new-password-42\n")
    assert deleted.json()["username"] == username
    user.fails(3, "whoami")
    again = new_cli(api_url, tmp_path)
    again.fails(3, "login", "-l", username, input="new-password-42\n")


# -- the messages of the issue ------------------------------------------------------------------


def test_release_numbers_as_tables_show_them(user: Cli) -> None:
    project = name()
    create_project(user, project)
    for arg in ("v1", "V2", "3"):
        # Parsed; the API then says there is no such release (not a pydantic message).
        result = user(*("rollback", arg, "-p", project))
        assert result.code in (1, 4), str(result)
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, str(result)
        assert "pydantic" not in result.err and "validation error" not in result.err
    bad = user.fails(2, "rollback", "vx", "-p", project)
    assert "'vx' is not a release number like v3 or 3" in bad.err
    assert "is not a release number" in user.fails(2, "logs", "--build", "v0", "-p", project).err


def test_fixed_messages(user: Cli, api_url: str) -> None:
    project = name()
    create_project(user, project)

    # The flag's own name, not the API's expiresInDays.
    err = user.fails(2, "tokens:create", "ci", "--expires-in-days", "0").err
    assert "--expires-in-days" in err and "expiresInDays" not in err

    # The default domain is listed by `domains`: removing it says why it cannot be.
    default = f"{project}.localhost"
    err = user.fails(1, "domains:remove", default, "-p", project).err
    assert err == (
        f"error: {default} is the project's default domain: it cannot be removed "
        "(only custom domains can)\n"
    )

    # A mistyped --api: not "not logged in", but which API you are logged in to.
    wrong = api_url.replace("/graphql", "/graphq")
    err = user.fails(3, "--api", wrong, "projects").err
    assert f"not logged in to {wrong} (you are logged in to {api_url})" in err
    assert "not a URL" in user.fails(2, "--api", "localhost:8000", "projects").err

    # An HTTP error without httpx's MDN link.
    token = json.loads((user.config_home / "paastech" / "credentials.json").read_text())
    stored = token["credentials"][user.api_url]["token"]
    http = Cli(wrong, user.home, {"PAASTECH_TOKEN": stored}).fails(1, "projects")
    assert "answered HTTP 404" in http.err and "mozilla" not in http.err
    assert http.err.count("\n") == 1

    # scale prints the result on stdout, nothing stray on stderr.
    scaled = user.ok("scale", "web=2", "-p", project)
    assert scaled.out == f"Scale of {project}: web=2\n"
    assert "web=2" not in scaled.err
    assert user.ok("scale", "-p", project).out == "web=2\n"
    assert user.ok("scale", "-p", project, "--json").json() == {"web": 2}

    # Invalid env var names are usage errors, as a missing '=': both exit 2.
    assert "is not KEY=VALUE" in user.fails(2, "env:set", "-p", project, "NOEQUALS").err
    assert "invalid env var name '1X'" in user.fails(2, "env:set", "-p", project, "1X=1").err


def test_logs_flags_as_heroku(user: Cli) -> None:
    project = name()
    create_project(user, project)
    # -n/--num is the line count; --tail/-t is a flag (follow), it takes no value. (No
    # deployment manager runs here: the options parse, then the API says it is unavailable.)
    for args in (("-n", "5"), ("--num", "5")):
        result = user("logs", "-p", project, *args)
        assert result.err == "error: the deployment manager is not reachable (unavailable)\n"
    err = user.fails(2, "logs", "-p", project, "--tail", "5").err
    assert "a release number goes with --build" in err
    assert "JSON Lines" in user.ok("logs", "--help").out


def test_open_prints_the_url_without_a_browser(user: Cli) -> None:
    project = name()
    create_project(user, project)
    url = user.ok("projects:info", project, "--json").json()["url"]
    assert user.ok("open", "-p", project).out == f"{url}\n"  # no DISPLAY: printed
    assert user.ok("open", "-a", project, "--json").json() == {"name": project, "url": url}


# -- --json everywhere --------------------------------------------------------------------------


def test_mutations_print_the_object_they_changed(user: Cli) -> None:
    project = name()
    create_project(user, project)
    env = user.ok("env:set", "-p", project, "A=1", "--json").json()
    assert env["name"] == project and env["envVars"] == [{"key": "A"}]
    assert env["release"] is None
    unset = user.ok("env:unset", "-p", project, "A", "--json").json()
    assert unset["envVars"] == [] and unset["release"] is None
    host = f"www.{project}.example.org"
    added = user.ok("domains:add", host, "-p", project, "--json").json()
    assert [d["hostname"] for d in added["domains"]] == [f"{project}.localhost", host]
    removed = user.ok("domains:remove", host, "-p", project, "--json").json()
    assert [d["hostname"] for d in removed["domains"]] == [f"{project}.localhost"]
    resources = user.ok("resources", "-m", "512m", "-p", project, "--json").json()
    assert resources["settings"]["memoryMb"] == 512
    token = user.ok("tokens:create", "ci", "--json").json()
    revoked = user.ok("tokens:revoke", token["id"], "--json").json()
    assert revoked["id"] == token["id"] and revoked["name"] == "ci"
    assert user.ok("logout", "--json").json() == {"loggedOut": True}


def test_errors_under_json_are_json_on_stderr(user: Cli, api_url: str, tmp_path: Path) -> None:
    out = new_cli(api_url, tmp_path).fails(3, "whoami", "--json")
    assert out.out == ""
    assert json.loads(out.err) == {
        "error": {
            "message": "not logged in: run `paastech login` (or set PAASTECH_TOKEN)",
            "code": "UNAUTHENTICATED",
            "exitCode": 3,
        }
    }
    missing = json.loads(user.fails(4, "env", "-p", "no-such-project", "--json").err)
    assert missing["error"]["code"] == "NOT_FOUND" and missing["error"]["exitCode"] == 4
    usage = json.loads(user.fails(2, "scale", "web", "-p", "x", "--json").err)
    assert usage["error"]["code"] == "USAGE" and "TYPE=N" in usage["error"]["message"]


# -- completion in a real bash ------------------------------------------------------------------


def bash_complete(cli: Cli, words: list[str], cword: int, cwd: Path | None = None) -> list[str]:
    """Source `paastech completion bash` in a real bash, set COMP_WORDS/COMP_CWORD as bash does
    (split at ':'), call the function and return COMPREPLY."""
    env = cli.env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    # What is completed is under test, not the 2 s budget (tests/unit/test_completion_timeout.py):
    # on a loaded machine an API answer can take longer.
    env["PAASTECH_COMPLETION_TIMEOUT"] = "60"
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    script = (
        "source <(paastech completion bash)\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={cword}\n"
        "_paastech_complete\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=env,
        cwd=cwd or cli.home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completion_is_registered(cli: Cli) -> None:
    env = cli.env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "--norc", "-c", "source <(paastech completion bash); complete -p paastech"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "complete -F _paastech_complete paastech"
    assert "compdef _paastech paastech" in cli.ok("completion", "zsh").out
    assert "complete -c paastech" in cli.ok("completion", "fish").out
    assert "no completion for 'tcsh'" in cli.fails(2, "completion", "tcsh").err


def test_bash_completion_with_colons(cli: Cli) -> None:
    # `paastech env:s<Tab>`: bash splits it into env : s; the answer replaces what follows ':'.
    assert bash_complete(cli, ["paastech", "env", ":", "s"], 3) == ["set"]
    assert bash_complete(cli, ["paastech", "env", ":"], 2) == ["get", "set", "unset"]
    assert bash_complete(cli, ["paastech", "projects", ":", "c"], 3) == ["create"]
    assert bash_complete(cli, ["paastech", "git", ":", ""], 3) == ["remote"]
    # No command typed yet: the visible commands; Heroku's names once nothing visible matches.
    assert "projects:create" in bash_complete(cli, ["paastech", ""], 1)
    assert bash_complete(cli, ["paastech", "config", ":", "s"], 3) == ["set"]
    assert "--app" in bash_complete(cli, ["paastech", "env", ":", "set", "--"], 4)


def test_bash_completion_of_projects_processes_and_releases(user: Cli, tmp_path: Path) -> None:
    first, second = name(), name()
    create_project(user, first)
    create_project(user, second)
    # `-p <Tab>` completes project names from the API, not files.
    found = bash_complete(user, ["paastech", "env", ":", "set", "-p", ""], 5)
    assert sorted(found) == sorted([first, second])
    assert bash_complete(user, ["paastech", "ps", "-a", first[:-1]], 3) == [first]
    assert bash_complete(user, ["paastech", "ps", "-a", first], 3) == [first]
    user.ok("scale", "web=1", "worker=2", "-p", first)
    assert sorted(bash_complete(user, ["paastech", "scale", "-p", first, ""], 4)) == [
        "web=",
        "worker=",
    ]
    # restart PROCESS[.N] (issue 19): the process types, for the alias too; one argument only.
    assert sorted(bash_complete(user, ["paastech", "restart", "-p", first, ""], 4)) == [
        "web",
        "worker",
    ]
    assert bash_complete(user, ["paastech", "ps", ":", "restart", "-p", first, "wo"], 6) == [
        "worker"
    ]
    assert bash_complete(user, ["paastech", "restart", "web", "-p", first, ""], 5) == []
    user.ok("env:set", "-p", first, "SECRET_KEY=hunter2")
    assert bash_complete(user, ["paastech", "env", ":", "unset", "-p", first, "SE"], 6) == [
        "SECRET_KEY"
    ]
    # Only names are cached, never values; the cache is private to the user.
    cache = (user.home / ".cache" / "paastech" / "completion.json").read_text()
    assert "hunter2" not in cache and first in cache
    # Logged out: nothing to complete, and no error.
    assert bash_complete(new_cli(user.api_url, tmp_path), ["paastech", "ps", "-p", ""], 3) == []
