"""`paastech restart PROCESS[.N]` (issue 19) against the whole platform with real Docker: one
replica or one process type restarts in place (no new release), web keeps serving through the
ingress meanwhile, bad inputs change nothing, and another Client gets NOT_FOUND."""

from __future__ import annotations

import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Cli, new_cli
from tests.cli.test_docker import developer, push, releases, workdir
from tests.support.platform import (
    Platform,
    cleanup_project,
    docker_inspect,
    gitd_process,
    platform,
)
from tests.support.servers import reserved_port

pytestmark = pytest.mark.docker

GITD_PORT = reserved_port()


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("restart-platform")
    with platform(data_dir, health_check_timeout_seconds=30, gitd_port=GITD_PORT) as p:
        try:
            yield p
        finally:
            for project in p.projects:
                cleanup_project(project)


@pytest.fixture(scope="module")
def scaled(plat: Platform, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str]:
    """A user with the ticker fixture running as web.1 and web.2 (v2)."""
    with gitd_process(plat, GITD_PORT):
        cli = developer(plat, GITD_PORT, tmp_path_factory.mktemp("restart"))
        cli.ok("keys:add")
        project = f"r-{secrets.token_hex(4)}"
        work = workdir(cli, "ticker")
        cli.ok("projects:create", project, cwd=work)
        plat.projects.append(project)
        pushed = push(cli, work)
        assert pushed.returncode == 0, pushed.stderr
    cli.ok("scale", "web=2", "-p", project, timeout=180)
    assert releases(cli, project)[0]["number"] == 2
    return cli, project


def containers(plat: Platform, project: str, release: int) -> dict[str, tuple[str, str]]:
    """web.N -> (container id, StartedAt), read from Docker itself."""
    found = {}
    for replica in (1, 2):
        data = docker_inspect(plat.container(project, release, "web", replica))
        found[f"web.{replica}"] = (data["Id"], data["State"]["StartedAt"])
    return found


def ingress_get(plat: Platform, project: str, http: httpx.Client) -> int:
    url = f"http://127.0.0.1:{plat.ingress_port}/"
    return http.get(url, headers={"Host": f"{project}.localhost"}).status_code


def wait_served(plat: Platform, project: str) -> None:
    with httpx.Client(timeout=5) as http:
        for _ in range(300):  # polls, each at least 0.2 s apart
            try:
                if ingress_get(plat, project, http) == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    pytest.fail(f"{project} is not served through the ingress")


class Hammer:
    """GETs through the ingress in a loop, from a thread, until stopped: every status seen."""

    def __init__(self, plat: Platform, project: str) -> None:
        self.plat, self.project = plat, project
        self.statuses: list[int | str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                try:
                    self.statuses.append(ingress_get(self.plat, self.project, http))
                except httpx.HTTPError as exc:
                    self.statuses.append(type(exc).__name__)

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_restart_one_replica_then_a_process_type(plat: Platform, scaled: tuple[Cli, str]) -> None:
    cli, project = scaled
    wait_served(plat, project)
    before = containers(plat, project, 2)

    # web.2 only: its container started again, web.1's did not; no new release.
    result = cli.ok("restart", "web.2", "-p", project, timeout=120)
    assert result.out.strip() == "Restarted web.2 of v2", str(result)
    after = containers(plat, project, 2)
    assert after["web.1"] == before["web.1"]
    assert after["web.2"][0] == before["web.2"][0]  # in place: the same container
    assert after["web.2"][1] != before["web.2"][1]  # ... started again
    latest = releases(cli, project)
    assert [(r["number"], r["status"]) for r in latest] == [(2, "RUNNING"), (1, "SUPERSEDED")]
    ps = {p["process"]: p for p in cli.ok("ps", "-p", project, "--json").json()}
    assert ps["web.1"]["running"] and ps["web.2"]["running"]

    # Every web replica, one at a time: the ingress answers 200 throughout.
    with Hammer(plat, project) as hammer:
        restarted = cli.ok("restart", "web", "-p", project, "--json", timeout=120).json()
    assert [(r["process"], r["release"], r["running"]) for r in restarted] == [
        ("web.1", 2, True),
        ("web.2", 2, True),
    ]
    assert hammer.statuses and set(hammer.statuses) == {200}, hammer.statuses
    again = containers(plat, project, 2)
    for process in ("web.1", "web.2"):
        assert again[process][0] == after[process][0]
        assert again[process][1] != after[process][1]

    # Heroku's name takes the same argument.
    result = cli.ok("ps:restart", "web.1", "-p", project, timeout=120)
    assert result.out.strip() == "Restarted web.1 of v2"
    assert containers(plat, project, 2)["web.2"] == again["web.2"]
    assert [r["number"] for r in releases(cli, project)] == [2, 1]


def test_bad_inputs_change_nothing(plat: Platform, scaled: tuple[Cli, str], tmp_path: Path) -> None:
    cli, project = scaled
    before = containers(plat, project, 2)

    for bad in ("web.x", ".2", "web.", "web=2"):
        result = cli.fails(2, "restart", bad, "-p", project)
        assert f"'{bad}' is not PROCESS or PROCESS.N (e.g. web or web.2)" in result.err
    result = cli.fails(2, "restart", "web.0", "-p", project)
    assert "replicas are numbered from 1 (web.1 is the first)" in result.err

    result = cli.fails(1, "restart", "worker", "-p", project)
    assert "no process type 'worker' in v2 (it runs: web)" in result.err
    result = cli.fails(1, "restart", "web.3", "-p", project)
    assert "web.3 does not exist: web runs 2 replicas (web.1 to web.2)" in result.err
    result = cli.fails(1, "restart", "Web", "-p", project)
    assert "invalid process type 'Web'" in result.err
    # Under --json the error is JSON on stderr, with the API's code.
    result = cli.fails(1, "restart", "web.3", "-p", project, "--json")
    assert '"VALIDATION"' in result.err

    # A project with nothing running.
    empty = f"e-{secrets.token_hex(4)}"
    cli.ok("projects:create", empty)
    result = cli.fails(1, "restart", "web", "-p", empty)
    assert "nothing is running: deploy first" in result.err

    assert containers(plat, project, 2) == before
    assert [r["number"] for r in releases(cli, project)] == [2, 1]


def test_another_client_cannot_restart(
    plat: Platform, scaled: tuple[Cli, str], tmp_path: Path
) -> None:
    cli, project = scaled
    before = containers(plat, project, 2)
    stranger = new_cli(plat.api_url, tmp_path)
    stranger.signup()
    with Hammer(plat, project) as hammer:
        for target in ("web.1", "web", "worker.7"):
            result = stranger.fails(4, "restart", target, "-p", project)
            assert f"project '{project}' not found" in result.err, str(result)
        result = stranger.fails(4, "ps:restart", "web.2", "-p", project, "--json")
        assert '"NOT_FOUND"' in result.err
    # The victim's containers are untouched and it served throughout.
    assert containers(plat, project, 2) == before
    assert hammer.statuses and set(hammer.statuses) == {200}, hammer.statuses
    assert [r["number"] for r in releases(cli, project)] == [2, 1]


def test_process_restart_is_refused_while_a_release_is_under_way(
    plat: Platform, scaled: tuple[Cli, str]
) -> None:
    """Runs last: it makes v3. While a release is under way, a process restart is refused and
    touches nothing; once v3 is live, it restarts v3's process. Pomegranate is held (SIGSTOP)
    while v3 is queued, so v3 can't finish before the restart is tried, however fast the build."""
    cli, project = scaled
    before = containers(plat, project, 2)
    pomegranate = plat.pomegranate.proc
    assert pomegranate is not None
    pomegranate.send_signal(signal.SIGSTOP)
    try:
        queued = cli.ok("deploy", "-p", project, "--no-wait")
        assert f"v3 of {project}" in queued.out, str(queued)
        refused = cli.fails(1, "restart", "web.1", "-p", project)
        assert "a release is in progress: restart once it is live" in refused.err
        assert releases(cli, project)[0]["status"] in ("QUEUED", "BUILDING")
        assert containers(plat, project, 2) == before
    finally:
        pomegranate.send_signal(signal.SIGCONT)
    for _ in range(480):  # polls, each at least 0.5 s apart
        if releases(cli, project)[0]["status"] == "RUNNING":
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"v3 never went live: {releases(cli, project)[0]}")
    result = cli.ok("restart", "web.1", "-p", project, timeout=120)
    assert result.out.strip() == "Restarted web.1 of v3"
    assert [r["number"] for r in releases(cli, project)][:2] == [3, 2]
