"""The CLI against the whole platform: API + Pomegranate + ingress + gitd, real Docker, real git
over SSH. The full journey in one test, then logs, ps, restart, stop/start and a failing deploy."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Cli, new_cli
from tests.support.platform import Platform, cleanup_project, fixture, gitd_process, platform
from tests.support.servers import reserved_port

pytestmark = pytest.mark.docker

GITD_PORT = reserved_port()  # the API's gitUrl fields point at this gitd
SSH_OPTS = (
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes "
    "-o BatchMode=yes -o LogLevel=ERROR"
)


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("cli-platform")
    with platform(data_dir, health_check_timeout_seconds=20, gitd_port=GITD_PORT) as p:
        try:
            yield p
        finally:
            for project in p.projects:
                cleanup_project(project)


@pytest.fixture(scope="module")
def gitd(plat: Platform) -> Iterator[int]:
    with gitd_process(plat, GITD_PORT):
        yield GITD_PORT


def developer(plat: Platform, gitd: int, tmp: Path) -> Cli:
    """A signed-up user with ~/.ssh/id_ed25519 registered and git set to push with it."""
    cli = new_cli(plat.api_url, tmp)
    cli.signup()
    key = cli.home / ".ssh" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dev@laptop", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    cli.env_extra["GIT_SSH_COMMAND"] = f"ssh -i {key} {SSH_OPTS}"
    return cli


def workdir(cli: Cli, app: str) -> Path:
    work = cli.home / f"{app}-{secrets.token_hex(2)}"
    shutil.copytree(fixture(app), work)
    cli.git("init", "-q", "-b", "main", cwd=work)
    cli.git("add", "-A", cwd=work)
    cli.git("commit", "-q", "-m", f"{app} fixture", cwd=work)
    return work


def push(cli: Cli, work: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "push", "paastech", "main"],
        cwd=work,
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def releases(cli: Cli, project: str) -> list[dict]:
    return cli.ok("releases", "-p", project, "--json").json()


@pytest.fixture(scope="module")
def ticker(plat: Platform, gitd: int, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str]:
    """A user and a running project of the ticker fixture (prints `tick N` every 100 ms)."""
    cli = developer(plat, gitd, tmp_path_factory.mktemp("ticker"))
    cli.ok("keys:add")
    project = f"k-{secrets.token_hex(4)}"
    work = workdir(cli, "ticker")
    cli.ok("projects:create", project, cwd=work)
    plat.projects.append(project)
    pushed = push(cli, work)
    assert pushed.returncode == 0, pushed.stderr
    return cli, project


def test_full_journey(plat: Platform, gitd: int, tmp_path: Path) -> None:
    cli = developer(plat, gitd, tmp_path)

    # keys:add picks ~/.ssh/id_ed25519.pub.
    assert "'dev@laptop'" in cli.ok("keys:add").out
    assert len(cli.ok("keys", "--json").json()) == 1

    # projects:create inside the repository adds the remote.
    project = f"j-{secrets.token_hex(4)}"
    work = workdir(cli, "ticker")
    cli.ok("projects:create", project, cwd=work)
    plat.projects.append(project)
    git_url = cli.git("remote", "get-url", "paastech", cwd=work).stdout.strip()
    assert git_url == f"ssh://git@127.0.0.1:{gitd}/{project}.git"

    # git push over SSH through gitd builds and releases v1.
    sha = cli.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    pushed = push(cli, work)
    assert pushed.returncode == 0, pushed.stderr
    assert "Application deployed" in pushed.stderr

    # releases (found from the remote, no -p).
    history = cli.ok("releases", "--json", cwd=work).json()
    assert [(r["number"], r["status"], r["commit"]) for r in history] == [(1, "RUNNING", sha)]
    assert history[0]["cause"].startswith("push")
    table = cli.ok("releases", cwd=work).out
    assert "v1" in table and "running" in table and sha[:7] in table and "ago" in table

    # env:set makes v2 and follows it to the end, with the URL.
    url = cli.ok("projects:info", "--json", cwd=work).json()["url"]
    result = cli.ok("env:set", "VERSION=v2", "GREETING=héllo wörld=1", cwd=work)
    assert f"v2 of {project} is live: {url}" in result.out
    assert "v2 running" in result.err  # progress lines on stderr when not a terminal
    assert [r["status"] for r in releases(cli, project)] == ["RUNNING", "SUPERSEDED"]
    assert "env: set GREETING, VERSION" in releases(cli, project)[0]["cause"]

    # scale web=2: v3 with two web processes.
    result = cli.ok("scale", "web=2", cwd=work)
    assert f"v3 of {project} is live" in result.out
    ps = cli.ok("ps", "--json", cwd=work).json()
    assert sorted((p["process"], p["running"], p["release"]) for p in ps) == [
        ("web.1", True, 3),
        ("web.2", True, 3),
    ]
    assert "web.2" in cli.ok("ps", cwd=work).out

    # rollback without a number: the release before the live one (v2, with v2's env);
    # rollback 1 then makes v5 with v1's image and env.
    result = cli.ok("rollback", cwd=work)
    assert f"v4 of {project} (rollback to v2) is live" in result.out  # it says it rolled back
    assert releases(cli, project)[0]["cause"] == "rollback to v2"
    result = cli.ok("rollback", "v1", cwd=work)  # as the tables show it
    assert f"v5 of {project} (rollback to v1) is live" in result.out
    latest = releases(cli, project)[0]
    assert (latest["number"], latest["status"], latest["cause"]) == (5, "RUNNING", "rollback to v1")
    assert cli.ok("env", "--json", cwd=work).json() == []

    # logs: recent runtime output, prefixed, and it ends by itself (else the timeout fails it):
    # the API completes runtimeLogs(follow: false) after the last 5 lines of each process.
    logs = cli.ok("logs", "-n", "5", cwd=work, timeout=30)
    assert re.search(r"^web\.1 \| tick \d+$", logs.out, re.M), logs.out
    running = [p for p in cli.ok("ps", "--json", cwd=work).json() if p["running"]]
    assert len(logs.out.splitlines()) == 5 * len(running), logs.out
    build = cli.ok("logs", "--build", "1", cwd=work).out
    assert f"-----> Building {project} (v1)" in build
    assert "=====> Application deployed" in build

    # projects:delete, confirmed by typing the name; the remote goes too.
    cli.ok("projects:delete", cwd=work, input=f"{project}\n")
    assert cli.ok("projects", "--json").json() == []
    assert cli.git("remote", cwd=work).stdout.strip() == ""
    gone = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=paastech.project={project}"],
        capture_output=True,
        text=True,
    ).stdout
    assert gone.strip() == ""


def test_logs_follow_keeps_up_with_the_app(ticker: tuple[Cli, str]) -> None:
    cli, project = ticker
    web = next(p for p in cli.ok("ps", "-p", project, "--json").json() if p["running"])
    # --tail follows, as Heroku's; -n is the number of recent lines.
    argv = [str(Path(sys.executable).with_name("paastech")), "logs", "--tail", "-p", project]
    with httpx.Client(timeout=5) as http:
        ticks_before = http.get(f"http://127.0.0.1:{web['hostPort']}/").json()["ticks"]
    proc = subprocess.Popen(
        [*argv, "-n", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli.env(),
        bufsize=1,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        assert all(re.fullmatch(r"web\.1 \| tick \d+\n", line) for line in lines), lines
        printed = [int(line.split()[-1]) for line in lines]
        # Live output, not a replay: no line from before the CLI started (the engine's `since`
        # has one-second granularity: at most 10 ticks earlier), then every tick in order.
        assert printed[0] >= ticks_before - 10, (ticks_before, printed)
        assert printed == list(range(printed[0], printed[0] + 6)), printed
    finally:
        proc.terminate()
        proc.wait(10)


def test_ps_restart_stop_start(ticker: tuple[Cli, str]) -> None:
    cli, project = ticker
    rows = cli.ok("ps", "-p", project, "--json").json()
    assert len(rows) == 1
    assert {"process", "state", "release", "restarts", "startedAt", "running"} <= set(rows[0])
    assert rows[0]["process"] == "web.1" and rows[0]["state"] == "running"
    table = cli.ok("ps", "-p", project).out
    for column in ("process", "state", "release", "restarts"):
        assert column in table

    before = releases(cli, project)[0]["number"]
    result = cli.ok("restart", "-p", project)
    assert f"v{before + 1} of {project} is live: http://{project}.localhost:" in result.out

    stopped = cli.ok("stop", "-p", project)
    assert f"Stopped {project}" in stopped.out
    assert cli.ok("ps", "-p", project, "--json").json() == []
    assert releases(cli, project)[0]["status"] == "STOPPED"
    assert "nothing is running" in cli.fails(1, "stop", "-p", project).err

    quick = cli.ok("start", "-p", project, "--no-wait")
    assert re.search(rf"v{before + 2} of {project} (queued|building|deploying)", quick.out)
    # Following a release that is already under way works too: restart follows its own.
    result = cli.ok("restart", "-p", project)
    assert f"v{before + 3} of {project} is live" in result.out
    assert [p["release"] for p in cli.ok("ps", "-p", project, "--json").json()] == [before + 3]


def test_failed_deploy_exits_1_with_the_reason(plat: Platform, gitd: int, tmp_path: Path) -> None:
    cli = developer(plat, gitd, tmp_path)
    cli.ok("keys:add")
    project = f"f-{secrets.token_hex(4)}"
    work = workdir(cli, "crash-on-start")
    cli.ok("projects:create", project, cwd=work)
    plat.projects.append(project)
    pushed = push(cli, work)
    assert pushed.returncode != 0
    assert [r["status"] for r in releases(cli, project)] == ["FAILED"]
    assert "boom" in releases(cli, project)[0]["failureReason"]

    result = cli.fails(1, "deploy", "-p", project)
    last = result.err.splitlines()[-1]
    assert last.startswith(f"error: v2 of {project} failed: web.1 "), result.err
    assert "  boom: missing DATABASE_URL" in result.err  # the app's last lines, before it
    assert f"paastech logs --build 2 -p {project}" in result.err
    table = cli.ok("releases", "-p", project).out
    assert "failed" in table and "redeploy" in table
    # Another Client cannot follow, scale or read it.
    stranger = new_cli(plat.api_url, tmp_path)
    stranger.signup()
    for args in (("deploy",), ("logs",), ("logs", "-f"), ("ps",), ("scale", "web=2")):
        stranger.fails(4, *args, "-p", project)
    assert json.loads(cli.ok("releases", "-p", project, "--json").out)[0]["number"] == 2


def test_no_op_scale_makes_no_release(ticker: tuple[Cli, str]) -> None:
    """Issue 19: scale to the current count says so, makes no release, restarts nothing."""
    cli, project = ticker
    before = releases(cli, project)[0]["number"]
    ids = {p["process"]: p["startedAt"] for p in cli.ok("ps", "-p", project, "--json").json()}
    current = cli.ok("scale", "-p", project, "--json").json()["web"]
    result = cli.ok("scale", f"web={current}", "-p", project, "--json")
    assert "nothing changed: no new release" in result.err
    assert result.json()["release"] is None
    assert releases(cli, project)[0]["number"] == before
    after = {p["process"]: p["startedAt"] for p in cli.ok("ps", "-p", project, "--json").json()}
    assert after == ids


def test_logs_into_head_ends_quietly(ticker: tuple[Cli, str]) -> None:
    """`paastech logs ... | head`: exit 0, no gql/websockets noise on stderr."""
    cli, project = ticker
    env = cli.env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    for args in ("--tail -n 0", "-n 50"):
        script = f"set -o pipefail; paastech logs -p {project} {args} | head -n 2"
        result = subprocess.run(
            ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 2
        assert result.stderr == "", result.stderr


def test_ctrl_c_while_following_says_the_deploy_goes_on(ticker: tuple[Cli, str]) -> None:
    cli, project = ticker
    before = releases(cli, project)[0]["number"]
    argv = [str(Path(sys.executable).with_name("paastech")), "restart", "-p", project]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env(), bufsize=1
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the follow has started: `vN of P (restart): queued…`
        assert f"v{before + 1} of {project} (restart)" in first, first
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert (
        f"stopped following v{before + 1} of {project}: the deploy goes on on the server" in rest
    ), rest
    # It did go on.
    deadline = time.monotonic() + 120
    while releases(cli, project)[0]["status"] != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
    latest = releases(cli, project)[0]
    assert (latest["number"], latest["status"]) == (before + 1, "RUNNING")
