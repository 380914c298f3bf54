"""The runit services generated from a Procfile, and their finish script's crash-loop rules.

The finish script runs here for real (/bin/sh), in a service directory of its own, runsv's
status file, and a stand-in `sv` on PATH that records the commands it was given."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backend import supervise
from backend.supervise import Layout, render_services, write_services
from tests.support.servers import run_backend

LAYOUT = Layout(Path("/srv/pt"), Path("/srv/pt/.data/run"), Path("/srv/pt/.data/logs"))


def test_every_procfile_line_is_a_service_with_its_log() -> None:
    files = render_services(
        "api: python -m backend api\n# comment\nweb: scripts/web.sh run 100%\n", LAYOUT
    )
    sv = Path("/srv/pt/.data/run/sv")
    assert {p.relative_to(sv).parts[0] for p in files if p.is_relative_to(sv)} == {"api", "web"}
    run = files[sv / "web" / "run"]
    assert run.startswith("#!/bin/sh\n")
    assert "cd /srv/pt\n" in run
    assert "exec setsid /bin/bash -c 'scripts/web.sh run 100%'" in run
    assert "exec 2>&1" in run  # stderr goes to the log too
    for signal in ("t", "k"):  # stop and kill reach the program's whole process group
        assert "kill -" in files[sv / "web" / "control" / signal]
    assert files[sv / "web" / "log" / "run"].endswith(
        "exec svlogd -tt -b 65536 /srv/pt/.data/logs/web\n"
    )
    config = files[Path("/srv/pt/.data/logs/web/config")].splitlines()
    assert config == [
        f"s{supervise.LOG_MAX_BYTES}",
        f"n{supervise.LOG_BACKUPS}",
        "pweb | ",
        "e*",
    ]


@pytest.mark.parametrize(
    ("procfile", "message"),
    [
        ("", "defines no process"),
        ("api python\n", "expected 'type: command'"),
        ("api: a\napi: b\n", "defined twice"),
    ],
)
def test_bad_procfile_is_refused(procfile: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_services(procfile, LAYOUT)


def test_services_are_written_afresh(tmp_path: Path) -> None:
    layout = Layout(tmp_path, tmp_path / "run", tmp_path / "logs")
    procfile = tmp_path / "Procfile"
    procfile.write_text("api: sleep 1\nold: sleep 2\n")
    write_services(procfile, layout)
    procfile.write_text("api: sleep 1\n")
    services = write_services(procfile, layout)
    assert sorted(p.name for p in services.iterdir()) == ["api"]  # a removed line is gone
    assert os.access(services / "api" / "run", os.X_OK)
    assert os.access(services / "api" / "finish", os.X_OK)
    assert (tmp_path / "logs" / "api" / "config").exists()


class Service:
    """One service directory with the generated finish script and a stand-in `sv`."""

    def __init__(self, root: Path, want: str = "up") -> None:
        layout = Layout(root, root / "run", root / "logs")
        procfile = root / "Procfile"
        procfile.write_text("api: python -m backend api\n")
        self.dir = write_services(procfile, layout) / "api"
        # runsv's human-readable status, as the finish script reads it.
        (self.dir / "supervise").mkdir()
        (self.dir / "supervise" / "stat").write_text(
            "finish, want exit\n" if want == "exit" else "finish\n"
        )
        bin_dir = root / "bin"
        bin_dir.mkdir()
        self.calls = root / "sv-calls"
        fake = bin_dir / "sv"
        fake.write_text(f'#!/bin/sh\necho "$*" >> {self.calls}\n')
        fake.chmod(0o755)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def finish(self, *args: str, up_for: int) -> str:
        started = int(subprocess.run(["date", "+%s"], capture_output=True, text=True).stdout)
        (self.dir / "started").write_text(f"{started - up_for}\n")
        done = subprocess.run(
            [str(self.dir / "finish"), *args],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def sv_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def test_a_stop_asked_for_is_not_a_crash(tmp_path: Path) -> None:
    service = Service(tmp_path, want="exit")
    assert service.finish("-1", "15", up_for=0) == ""
    assert service.sv_calls() == []


def test_a_crash_after_a_good_start_restarts_at_once(tmp_path: Path) -> None:
    service = Service(tmp_path)
    said = service.finish("-1", "9", up_for=supervise.START_SECONDS + 5)
    assert said == "[supervisor] api exited unexpectedly (killed by signal 9): restarting it"
    assert (service.dir / "quick").read_text().strip() == "0"


def test_quick_crashes_back_off_then_give_up(tmp_path: Path) -> None:
    service = Service(tmp_path)
    # Attempts before the limit wait 1, 2, ... s: three here keep the test short.
    (service.dir / "quick").write_text(f"{supervise.START_RETRIES - 2}\n")
    said = service.finish("3", "0", up_for=0)
    attempt = supervise.START_RETRIES - 1
    assert said == (
        f"[supervisor] api crashed while starting (exit code 3, attempt {attempt}): "
        f"retrying in {attempt} s"
    )
    assert "down ." not in service.sv_calls()
    said = service.finish("3", "0", up_for=0)
    assert said.startswith(
        f"[supervisor] api crashed {supervise.START_RETRIES} times in a row within "
        f"{supervise.START_SECONDS} s of starting (exit code 3): crash loop, giving up."
    )
    assert said.endswith(f"Fix it, then: sv start {service.dir}")
    assert service.sv_calls()[-1] == "down ."  # left down: runsv does not start it again
    assert (service.dir / "quick").read_text().strip() == "0"  # a later start counts afresh
    # A good run in between resets the count.
    (service.dir / "quick").write_text("3\n")
    service.finish("1", "0", up_for=supervise.START_SECONDS)
    assert (service.dir / "quick").read_text().strip() == "0"


def test_the_supervisor_needs_runit() -> None:
    assert supervise.missing_tools() == []  # make's bootstrap installs Debian's runit


def _supervise(tmp_path: Path, procfile: str, path: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "Procfile").write_text(procfile)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAASTECH_")}
    env.update(PAASTECH_DATA_DIR=str(tmp_path / "data"), PATH=path)
    return run_backend("supervise", "--procfile", str(tmp_path / "Procfile"), env=env)


def test_without_runit_the_supervisor_refuses_and_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    done = _supervise(tmp_path, "api: sleep 1\n", str(empty))
    assert done.returncode == 2
    assert "cannot supervise: runsvdir, runsv, svlogd, sv missing (apt-get install runit)" in (
        done.stderr
    )
    assert not (tmp_path / "data" / "run").exists()


def test_a_bad_procfile_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    done = _supervise(tmp_path, "api python\n", os.environ["PATH"])
    assert done.returncode == 2
    assert "cannot supervise" in done.stderr and "expected 'type: command'" in done.stderr
    assert not (tmp_path / "data" / "run" / "sv").exists()
