"""One-off commands (issue 14): `paastech run -p NAME -- CMD...` over the API's /run websocket and
`ssh git@HOST run NAME -- CMD...` through gitd, against the whole platform (API + Pomegranate +
ingress + gitd), real Docker, a real ssh client."""

from __future__ import annotations

import os
import pty
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.cli.conftest import Cli, new_cli
from tests.support.platform import (
    LIGHT_DOCKERFILE,
    Platform,
    cleanup_project,
    fixture,
    gitd_process,
    platform,
)
from tests.support.servers import reserved_port

pytestmark = pytest.mark.docker

GITD_PORT = reserved_port()
SSH_OPTS = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
]
# run_timeout_seconds of this platform: the time-limit test waits this long. Not shorter: that
# test reads the detached one-off's output with `paastech logs` before the limit removes it,
# and a CLI start takes seconds on a loaded machine (30 failed at a load of 20).
RUN_TIMEOUT = 40
RUN_CAP = 2  # run_max_per_client of this platform
PAASTECH = str(Path(sys.executable).with_name("paastech"))


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("run-platform")
    with platform(
        data_dir,
        health_check_timeout_seconds=20,
        gitd_port=GITD_PORT,
        run_timeout_seconds=RUN_TIMEOUT,
        run_max_per_client=RUN_CAP,
    ) as p:
        try:
            yield p
        finally:
            for project in p.projects:
                cleanup_project(project)


@pytest.fixture(scope="module")
def gitd(plat: Platform) -> Iterator[int]:
    with gitd_process(plat, GITD_PORT, run_timeout_seconds=RUN_TIMEOUT):
        yield GITD_PORT


def developer(plat: Platform, tmp: Path) -> Cli:
    """A signed-up user with ~/.ssh/id_ed25519 registered and git set to push with it."""
    cli = new_cli(plat.api_url, tmp)
    cli.signup()
    key = cli.home / ".ssh" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    cli.env_extra["GIT_SSH_COMMAND"] = " ".join(["ssh", "-i", str(key), *SSH_OPTS])
    cli.ok("keys:add")
    return cli


def deployed(plat: Platform, cli: Cli, *env: str) -> str:
    """A project of the python fixture, pushed and running, with `env` set before the push (its
    release has it). Built from LIGHT_DOCKERFILE: one-offs run in whatever image the release has."""
    project = f"r-{secrets.token_hex(4)}"
    work = cli.home / f"app-{secrets.token_hex(2)}"
    shutil.copytree(fixture("python"), work)
    (work / "Dockerfile").write_text(LIGHT_DOCKERFILE)
    cli.git("init", "-q", "-b", "main", cwd=work)
    cli.git("add", "-A", cwd=work)
    cli.git("commit", "-q", "-m", "app", cwd=work)
    cli.ok("projects:create", project, cwd=work)
    plat.projects.append(project)
    if env:
        cli.ok("env:set", *env, "-p", project, timeout=120)
    pushed = subprocess.run(
        ["git", "push", "paastech", "main"],
        cwd=work,
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pushed.returncode == 0, pushed.stderr
    return project


def oneoffs(project: str) -> list[str]:
    """Names of the project's one-off containers, as the docker CLI lists them by label."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=paastech.project={project}",
            "--filter",
            "label=paastech.oneoff=true",
            "--format",
            "{{.Names}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def wait_for(condition, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {within:g} s: {what}")


def ssh(cli: Cli, *remote: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    key = cli.home / ".ssh" / "id_ed25519"
    return subprocess.run(
        ["ssh", "-i", str(key), *SSH_OPTS, "-p", str(GITD_PORT), "git@127.0.0.1", *remote],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ssh_in_terminal(cli: Cli, *remote: str) -> tuple[int, str]:
    """`ssh -t git@host ...` typed in a terminal: ssh gets a pty, and asks the server for one."""
    key = cli.home / ".ssh" / "id_ed25519"
    argv = ["ssh", "-t", "-i", str(key), *SSH_OPTS, "-p", str(GITD_PORT), "git@127.0.0.1"]
    return in_terminal([*argv, *remote], env=None)


def in_terminal(argv: list[str], env: dict[str, str] | None) -> tuple[int, str]:
    """Run ``argv`` with a pty as its stdin, stdout and stderr: exit code and output."""
    main, child = pty.openpty()
    proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, close_fds=True, env=env)
    os.close(child)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            output += chunk
        return proc.wait(60), output.decode(errors="replace")
    finally:
        os.close(main)


@pytest.fixture(scope="module")
def app(plat: Platform, gitd: int, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str]:
    cli = developer(plat, tmp_path_factory.mktemp("run-owner"))
    return cli, deployed(plat, cli, "GREETING=hello from the release")


# ---------------------------------------------------------------------------------- the CLI


def test_run_prints_output_and_exits_0(app: tuple[Cli, str]) -> None:
    cli, project = app
    result = cli.ok("run", "-p", project, "--", "echo", "hi")
    assert result.out == "hi\n"
    assert oneoffs(project) == []  # removed once it ended


def test_run_returns_the_commands_exit_code(app: tuple[Cli, str]) -> None:
    cli, project = app
    result = cli.fails(3, "run", "-p", project, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.out == "out\n"
    assert result.err == "err\n"
    assert oneoffs(project) == []


def test_run_sees_the_release_env_and_runs_hardened(app: tuple[Cli, str]) -> None:
    cli, project = app
    assert (
        cli.ok("run", "-p", project, "--", "printenv", "GREETING").out == "hello from the release\n"
    )
    # Same hardening as the app's containers: not root, no capabilities.
    assert cli.ok("run", "-p", project, "--", "id", "-u").out.strip() != "0"
    caps = cli.ok("run", "-p", project, "--", "grep", "CapEff", "/proc/self/status").out
    assert caps.split()[-1] == "0000000000000000"


def test_run_pipes_stdin(app: tuple[Cli, str]) -> None:
    cli, project = app
    assert cli.ok("run", "-p", project, "--", "cat", input="abc\n").out == "abc\n"
    big = "".join(f"line {i}\n" for i in range(20_000))  # more than one chunk each way
    assert cli.ok("run", "-p", project, "--", "wc", "-l", input=big).out.strip() == "20000"
    # No TTY when stdin is not a terminal.
    assert cli.fails(1, "run", "-p", project, "--", "tty").out.strip() == "not a tty"


def test_run_from_a_terminal_has_a_tty(app: tuple[Cli, str]) -> None:
    cli, project = app
    code, output = in_terminal([PAASTECH, "run", "-p", project, "--", "tty"], cli.env())
    assert code == 0, output
    assert "/dev/pts/" in output
    code, output = in_terminal([PAASTECH, "run", "-p", project, "--no-tty", "--", "tty"], cli.env())
    assert code == 1 and "not a tty" in output, output
    assert oneoffs(project) == []


def test_run_container_is_removed_when_the_client_goes_away(app: tuple[Cli, str]) -> None:
    cli, project = app
    proc = subprocess.Popen(
        [PAASTECH, "run", "-p", project, "--", "sh", "-c", "echo started; exec sleep 3600"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env(),
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "started\n"
        assert len(oneoffs(project)) == 1
        proc.send_signal(2)  # Ctrl-C
        assert proc.wait(30) == 130
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: oneoffs(project) == [], 30, "the one-off container removed after Ctrl-C")


def test_detached_output_goes_to_the_logs_and_the_time_limit_applies(
    plat: Platform, gitd: int, tmp_path: Path
) -> None:
    cli = developer(plat, tmp_path)
    project = deployed(plat, cli)
    marker = f"detached-{secrets.token_hex(4)}"
    result = cli.ok(
        "run", "-p", project, "--detach", "--", "sh", "-c", f"echo {marker}; sleep 3600"
    )
    names = oneoffs(project)
    assert len(names) == 1 and names[0] in result.out
    # The attached one beside it, in the background: both end at the time limit.
    attached = subprocess.Popen(
        [PAASTECH, "run", "-p", project, "--", "sleep", "3600"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env(),
        text=True,
    )
    try:
        wait_for(
            lambda: marker in cli.ok("logs", "-p", project, "-n", "20", timeout=60).out,
            RUN_TIMEOUT,
            "the detached command's output in `paastech logs`",
        )
        logs = cli.ok("logs", "-p", project, "-n", "20", timeout=60).out
        assert any(line.startswith("run.") and marker in line for line in logs.splitlines()), logs
        # The web process is untouched by the one-offs and the release is not marked crashed.
        _, err = attached.communicate(timeout=RUN_TIMEOUT * 3)
        assert attached.returncode == 124, err
        assert f"longer than {RUN_TIMEOUT} s" in err
    finally:
        attached.kill()
        attached.wait()
    wait_for(lambda: oneoffs(project) == [], RUN_TIMEOUT * 2, "detached one-off removed")
    assert cli.ok("releases", "-p", project, "--json").json()[0]["status"] == "RUNNING"


def test_a_deploy_leaves_a_running_one_off_alone(plat: Platform, gitd: int, tmp_path: Path) -> None:
    """As Heroku's one-off dynos: a new release does not kill a running `run` session, which
    keeps the env of the release it started from."""
    cli = developer(plat, tmp_path)
    project = deployed(plat, cli, "STAGE=one")
    proc = subprocess.Popen(
        [PAASTECH, "run", "-p", project, "--", "sh", "-c", "echo $STAGE; read line; echo $line"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env(),
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "one\n"
        cli.ok("env:set", "STAGE=two", "-p", project, timeout=120)  # a new release goes live
        assert [r["status"] for r in cli.ok("releases", "-p", project, "--json").json()][:2] == [
            "RUNNING",
            "SUPERSEDED",
        ]
        assert len(oneoffs(project)) == 1
        proc.stdin.write("still here\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "still here\n"
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert oneoffs(project) == []
    assert cli.ok("run", "-p", project, "--", "printenv", "STAGE").out == "two\n"


def test_detached_command_is_removed_when_done(app: tuple[Cli, str]) -> None:
    cli, project = app
    result = cli.ok("run", "-p", project, "--detach", "--", "true")
    assert "Started" in result.out
    wait_for(lambda: oneoffs(project) == [], 60, "the finished detached one-off removed")


def test_concurrent_one_offs_are_capped_per_client(
    plat: Platform, gitd: int, tmp_path: Path
) -> None:
    cli = developer(plat, tmp_path)
    project = deployed(plat, cli)
    procs = [
        subprocess.Popen(
            [PAASTECH, "run", "-p", project, "--", "sh", "-c", "echo up; exec sleep 3600"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli.env(),
            text=True,
        )
        for _ in range(RUN_CAP)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        refused = cli.fails(1, "run", "-p", project, "--", "echo", "one too many")
        assert (
            f"quota run_max_per_client exceeded: limit {RUN_CAP}, in use {RUN_CAP}" in refused.err
        )
        assert refused.out == ""
        assert len(oneoffs(project)) == RUN_CAP
    finally:
        for proc in procs:
            proc.send_signal(2)
        for proc in procs:
            proc.wait(30)
    wait_for(lambda: oneoffs(project) == [], 30, "the capped one-offs removed")
    assert cli.ok("run", "-p", project, "--", "echo", "again").out == "again\n"


def test_bad_paths(plat: Platform, app: tuple[Cli, str], tmp_path: Path) -> None:
    cli, project = app
    # No `--`, or nothing after it: usage errors, nothing sent.
    assert "no `--` before the command" in cli.fails(2, "run", "-p", project, "echo", "hi").err
    assert "no command after --" in cli.fails(2, "run", "-p", project, "--").err
    # A project that never ran.
    empty = f"e-{secrets.token_hex(4)}"
    cli.ok("projects:create", empty)
    plat.projects.append(empty)
    assert "nothing is running: push first" in cli.fails(1, "run", "-p", empty, "--", "ls").err
    assert oneoffs(empty) == []
    # Not logged in.
    anonymous = new_cli(plat.api_url, tmp_path)
    assert anonymous.fails(3, "run", "-p", project, "--", "ls").code == 3


def test_another_client_cannot_run_in_the_project(
    plat: Platform, app: tuple[Cli, str], tmp_path: Path
) -> None:
    owner, project = app
    attacker = developer(plat, tmp_path)
    result = attacker.fails(4, "run", "-p", project, "--", "printenv", "GREETING")
    assert f"project '{project}' not found" in result.err
    assert "hello" not in result.out + result.err
    over_ssh = ssh(attacker, "run", project, "--", "printenv", "GREETING")
    assert over_ssh.returncode == 1
    assert f"remote: project '{project}' not found" in over_ssh.stderr
    assert over_ssh.stdout == ""
    assert oneoffs(project) == []  # nothing was started
    # The victim keeps serving through the ingress.
    host = urlparse(owner.ok("projects:info", "-p", project, "--json").json()["url"]).hostname
    response = httpx.get(
        f"http://127.0.0.1:{plat.ingress_port}/", headers={"Host": host}, timeout=10
    )
    assert response.status_code == 200


# ---------------------------------------------------------------------------------- over SSH


def test_ssh_run_output_exit_code_stdin_and_env(app: tuple[Cli, str]) -> None:
    cli, project = app
    hi = ssh(cli, "run", project, "--", "echo", "hi")
    assert (hi.returncode, hi.stdout) == (0, "hi\n"), hi.stderr
    # ssh joins its arguments with spaces: the remote side splits them as a shell would.
    three = ssh(cli, "run", project, "--", "sh -c 'echo err >&2; exit 3'")
    assert (three.returncode, three.stderr) == (3, "err\n")
    assert (
        ssh(cli, "run", project, "--", "printenv", "GREETING").stdout == "hello from the release\n"
    )
    assert ssh(cli, "run", project, "--", "cat", stdin="abc\n").stdout == "abc\n"
    # Without -t: no TTY.
    no_tty = ssh(cli, "run", project, "--", "tty")
    assert (no_tty.returncode, no_tty.stdout.strip()) == (1, "not a tty")
    assert oneoffs(project) == []


def test_ssh_run_with_t_has_a_tty(app: tuple[Cli, str]) -> None:
    cli, project = app
    code, output = ssh_in_terminal(cli, "run", project, "--", "tty")
    assert code == 0, output
    assert "/dev/pts/" in output
    code, output = ssh_in_terminal(cli, "run", project, "--", "sh", "-c", "'exit 5'")
    assert code == 5, output
    assert oneoffs(project) == []


def test_ssh_run_container_is_removed_when_ssh_goes_away(app: tuple[Cli, str]) -> None:
    cli, project = app
    key = cli.home / ".ssh" / "id_ed25519"
    proc = subprocess.Popen(
        [
            *("ssh", "-i", str(key), *SSH_OPTS, "-p", str(GITD_PORT), "git@127.0.0.1"),
            *("run", project, "--", "sh -c 'echo started; exec sleep 3600'"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "started\n"
        assert len(oneoffs(project)) == 1
        proc.kill()  # the client vanishes: no EOF, no exit request
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: oneoffs(project) == [], 30, "the one-off removed once the ssh client left")


def test_ssh_run_bad_paths(app: tuple[Cli, str]) -> None:
    cli, project = app
    no_dashes = ssh(cli, "run", project, "echo", "hi")
    assert no_dashes.returncode == 1
    assert "remote: refused: usage: run <project> -- <command>" in no_dashes.stderr
    empty = ssh(cli, "run", project, "--")
    assert empty.returncode == 1 and "no command after --" in empty.stderr
    missing = ssh(cli, "run", "r-nothing-here", "--", "ls")
    assert (
        missing.returncode == 1 and "remote: project 'r-nothing-here' not found" in missing.stderr
    )
    assert oneoffs(project) == []
