"""`paastech activity`, `sessions`, `sessions:revoke`, account deletion by email and the project
state in `projects` / `projects:info` (issue 18), against a real API server (SQLite, no Docker)."""

from __future__ import annotations

import json
import secrets
import selectors
import subprocess
import time

import httpx

from tests.cli.conftest import PASSWORD, SCRIPT, Cli

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def name() -> str:
    return f"a{secrets.token_hex(4)}"


def whoami(cli: Cli) -> str:
    return cli.ok("whoami", "--json").json()["username"]


def browser_login(cli: Cli) -> str:
    """A login from a browser (the web app's way): a session token."""
    query = "mutation($l: String!, $p: String!) { login(login: $l, password: $p) { token } }"
    answer = httpx.post(
        cli.api_url,
        json={"query": query, "variables": {"l": whoami(cli), "p": PASSWORD}},
        headers={"User-Agent": FIREFOX},
        timeout=30,
    ).json()
    return answer["data"]["login"]["token"]


def test_activity_lists_what_the_cli_did(user: Cli, other: Cli) -> None:
    project = name()
    user.ok("projects:create", project)
    user.ok("env:set", "-p", project, "SECRET_KEY=hunter2-value")
    user.ok("scale", "-p", project, "web=0")
    records = user.ok("activity", "--json").json()
    assert [r["action"] for r in records[-3:]] == ["project.create", "env.set", "scale"]
    assert {r["source"] for r in records[-3:]} == {"cli"}
    assert records[-2]["detail"] == {"keys": ["SECRET_KEY"]}
    assert records[-1]["tokenName"].startswith("cli ")
    assert "hunter2-value" not in user.ok("activity", "--json").out
    table = user.ok("activity", project).out
    assert "scaled web to 0" in table and "set env SECRET_KEY" in table
    only = user.ok("activity", "-p", project, "--json").json()
    assert [r["action"] for r in only] == ["project.create", "env.set", "scale"]
    assert [r["action"] for r in user.ok("activity", "-n", "1", "--json").json()] == ["scale"]
    # Another Client sees none of it, and not the project's feed.
    assert project not in other.ok("activity", "--json").out
    other.fails(4, "activity", project)


def test_activity_bad_input(user: Cli) -> None:
    user.fails(2, "activity", "-n", "0")
    user.fails(2, "activity", "-n", "201")
    user.fails(2, "activity", "one", "-p", "two")
    result = user.fails(4, "activity", "no-such-project")
    assert "not found" in result.err


def test_activity_follow_prints_new_records(user: Cli) -> None:
    project = name()
    user.ok("projects:create", project)
    argv = [str(SCRIPT), "activity", project, "-f", "--json"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=user.env()
    )
    lines: list[dict] = []
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
            deadline = time.monotonic() + 60
            acted = False
            while len(lines) < 2 and time.monotonic() < deadline:
                if not sel.select(timeout=1):
                    continue
                line = proc.stdout.readline()  # type: ignore[union-attr]
                assert line, proc.stderr.read()  # type: ignore[union-attr]
                lines.append(json.loads(line))
                if not acted:  # the past record is out: the live feed follows it
                    acted = True
                    user.ok("domains:add", "-p", project, "www.example.net")
    finally:
        proc.terminate()
        proc.wait(15)
    assert [r["action"] for r in lines] == ["project.create", "domain.add"], lines


def test_sessions_list_and_revoke(user: Cli, other: Cli) -> None:
    assert user.ok("sessions", "--json").json() == []  # the CLI keeps a named token instead
    token = browser_login(user)
    rows = user.ok("sessions", "--json").json()
    assert [(r["device"], r["current"]) for r in rows] == [("Firefox on Linux", False)]
    assert "Firefox on Linux" in user.ok("sessions").out
    other.fails(4, "sessions:revoke", rows[0]["id"])  # not other's
    user.fails(4, "sessions:revoke", "12345678")
    done = user.ok("sessions:revoke", rows[0]["id"])
    assert "Firefox on Linux" in done.out
    browser = Cli(user.api_url, user.home, {"PAASTECH_TOKEN": token})
    browser.fails(3, "whoami")
    assert user.ok("sessions", "--json").json() == []
    actions = [r["action"] for r in user.ok("activity", "--json").json()]
    assert actions[-2:] == ["session.login", "session.revoke"]


def test_password_change_logs_other_sessions_out(user: Cli) -> None:
    token = browser_login(user)
    browser = Cli(user.api_url, user.home, {"PAASTECH_TOKEN": token})
    result = user.fails(1, "account:password", input="wrong-pass-1\nnew-pass-42\nnew-pass-42\n")
    assert "wrong password" in result.err
    browser.ok("whoami")  # nothing changed
    user.ok("account:password", input=f"{PASSWORD}\nnew-pass-42\nnew-pass-42\n")
    browser.fails(3, "whoami")
    user.ok("whoami")  # the CLI's named token stays


def test_account_delete_by_email(user: Cli) -> None:
    project = name()
    user.ok("projects:create", project)
    username = whoami(user)
    wrong = user.fails(1, "account:delete", "--confirm", "someone@example.com")
    assert "nothing deleted" in wrong.err
    user.ok("projects:info", project)
    user.ok("account:delete", "--confirm", f"{username}@example.com", input=f"{PASSWORD}\n")
    user.fails(3, "whoami")


def test_projects_show_the_state(user: Cli) -> None:
    project = name()
    user.ok("projects:create", project)
    row = next(r for r in user.ok("projects", "--json").json() if r["name"] == project)
    assert row["state"] == "NEW"
    assert "new" in user.ok("projects").out
    info = user.ok("projects:info", project, "--json").json()
    assert info["state"] == "NEW"
    assert "state:" in user.ok("projects:info", project).out
