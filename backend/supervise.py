"""`make up` under supervision: runit runs every Procfile line and restarts what crashes.

runit (Debian's package: runsvdir, runsv, svlogd, sv; small C programs) replaced supervisord and
its Python event listener, which cost about 17 MB of the platform's 200 MB budget (issue 17);
runit's dozen processes cost about 1.5 MB. Each Procfile line becomes a runit service in
``DATA_DIR/run/sv/<name>``:

* ``run`` starts the command in a session of its own (so a stop reaches its children too);
  runsv starts it again when it exits;
* ``finish`` (runsv runs it after each exit) tells a crash from a stop: a program that dies is
  restarted at once; one that dies within START_SECONDS of its start is retried after a growing
  delay (1 s, 2 s, ...) and after START_RETRIES such crashes in a row is given up (left down):
  the crash-loop limit, reported with the command that starts it again;
* ``control/t`` and ``control/k`` signal the program's whole process group (web.sh starts
  children), not just its first process;
* ``log/run`` is svlogd: every line, stamped and prefixed with the program's name, goes to the
  terminal and to ``DATA_DIR/logs/<name>/current`` (rotated at LOG_MAX_BYTES, LOG_BACKUPS kept).

The other programs keep running whatever one does. Ctrl-C (SIGINT) or SIGTERM stops every program
(TERM, then KILL after STOP_WAIT_SECONDS) and the supervisor. ``sv status DATA_DIR/run/sv/*`` and
``sv restart DATA_DIR/run/sv/<name>`` control them. The services are generated from the Procfile,
so a new Procfile line is supervised with no change here.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from backend.pomegranate.procfile import parse_procfile

__all__ = ["Layout", "exec_runsvdir", "render_services", "write_services"]

START_SECONDS = 3  # a program must stay up this long for its start to count
START_RETRIES = 5  # quick crashes in a row before giving up (the crash-loop limit)
STOP_WAIT_SECONDS = 15  # SIGTERM, then SIGKILL after this
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
RUNIT_TOOLS = ("runsvdir", "runsv", "svlogd", "sv")


@dataclass(frozen=True)
class Layout:
    """Where the services, and the programs' logs, live."""

    root: Path  # the checkout: programs run here
    run_dir: Path
    log_dir: Path

    @classmethod
    def for_data_dir(cls, root: Path, data_dir: Path) -> Layout:
        return cls(root.resolve(), (data_dir / "run").resolve(), (data_dir / "logs").resolve())

    @property
    def services(self) -> Path:
        return self.run_dir / "sv"

    def service(self, name: str) -> Path:
        return self.services / name

    def logs(self, name: str) -> Path:
        """The program's log directory: svlogd's `current`, the rotated files beside it."""
        return self.log_dir / name


def _script(*lines: str) -> str:
    return "\n".join(["#!/bin/sh", *lines, ""])


def _run(name: str, command: str, layout: Layout) -> str:
    return _script(
        f"# {name}: {command}",
        "exec 2>&1",
        "date +%s > started",
        f"cd {shlex.quote(str(layout.root))}",
        # bash -c like honcho; bash execs a simple command, so the pid stays the program's.
        # setsid (no fork: runsv's child is no group leader) makes its process group its own.
        f"exec setsid /bin/bash -c {shlex.quote(command)}",
    )


def _finish(name: str, layout: Layout) -> str:
    service = shlex.quote(str(layout.service(name)))
    return _script(
        f"# runsv runs this after each exit of {name}: $1 its exit code (-1: signal $2).",
        # A stop asked for (sv down/exit, Ctrl-C) is not a crash. runsv's own words in stat
        # (`sv status` may show pid 0 and no "want" while finish starts).
        'case "$(cat supervise/stat)" in *"want down"*|*"want exit"*) exit 0 ;; esac',
        'if [ "$1" = -1 ]; then why="killed by signal $2"; else why="exit code $1"; fi',
        'say() { echo "[supervisor] $*"; }',
        "started=$(cat started 2>/dev/null || echo 0)",
        f"if [ $(($(date +%s) - started)) -ge {START_SECONDS} ]; then",
        "    echo 0 > quick",
        f'    say "{name} exited unexpectedly ($why): restarting it"',
        "    exit 0",
        "fi",
        "quick=$(($(cat quick 2>/dev/null || echo 0) + 1))",
        f"if [ $quick -ge {START_RETRIES} ]; then",
        "    echo 0 > quick",
        # Down first: whoever reads the message and starts it again is not undone by this.
        "    sv down . >/dev/null",
        f'    say "{name} crashed {START_RETRIES} times in a row within {START_SECONDS} s of'
        f' starting ($why): crash loop, giving up. Fix it, then: sv start {service}"',
        "    exit 0",
        "fi",
        "echo $quick > quick",
        f'say "{name} crashed while starting ($why, attempt $quick): retrying in $quick s"',
        "sleep $quick",
    )


def _signal_group(signal: str) -> str:
    # Exit 0: runsv then sends nothing itself. CONT wakes a stopped program to take the TERM.
    return _script(
        "pid=$(cat supervise/pid 2>/dev/null) || exit 1",
        '[ -n "$pid" ] || exit 1',
        f'kill -{signal} -"$pid" 2>/dev/null || kill -{signal} "$pid" 2>/dev/null',
        'kill -CONT -"$pid" 2>/dev/null',
        "exit 0",
    )


def render_services(procfile_text: str, layout: Layout) -> dict[Path, str]:
    """Every file of every service (path -> text), for a Procfile; ValueError if it is bad."""
    programs = parse_procfile(procfile_text)
    width = max(len(n) for n in programs)  # the names' column, aligned as honcho did
    files: dict[Path, str] = {}
    for name, command in programs.items():
        service = layout.service(name)
        files[service / "run"] = _run(name, command, layout)
        files[service / "finish"] = _finish(name, layout)
        files[service / "control" / "t"] = _signal_group("TERM")
        files[service / "control" / "k"] = _signal_group("KILL")
        log_dir = layout.logs(name)
        # svlogd: stamped lines, rotated; `p` prefixes them, `e*` copies each to the terminal.
        files[service / "log" / "run"] = _script(
            f"exec svlogd -tt -b 65536 {shlex.quote(str(log_dir))}"
        )
        files[log_dir / "config"] = f"s{LOG_MAX_BYTES}\nn{LOG_BACKUPS}\np{name:<{width}} | \ne*\n"
    return files


def write_services(procfile: Path, layout: Layout) -> Path:
    """Write the services of a Procfile afresh (a removed line leaves none); their directory."""
    files = render_services(procfile.read_text(), layout)
    shutil.rmtree(layout.services, ignore_errors=True)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if path.name != "config":
            path.chmod(0o755)
    return layout.services


def missing_tools() -> list[str]:
    return [tool for tool in RUNIT_TOOLS if shutil.which(tool) is None]


# The foreground process `make up` leaves on the terminal: runsvdir supervises the services;
# on Ctrl-C or TERM every service is stopped (TERM, KILL after the wait) and runsv exits.
SUPERVISOR_SH = f"""
services=$1
runsvdir -P "$services" &
runsvdir=$!
stop() {{
    kill -TERM $runsvdir 2>/dev/null
    sv -w {STOP_WAIT_SECONDS} force-shutdown "$services"/* >/dev/null 2>&1
    exit 0
}}
trap stop INT TERM
wait
stop
"""


def exec_runsvdir(services: Path) -> None:
    """Replace this process with the supervisor in the foreground (Ctrl-C reaches it)."""
    os.execv("/bin/sh", ["/bin/sh", "-c", SUPERVISOR_SH, "paastech-supervise", str(services)])
