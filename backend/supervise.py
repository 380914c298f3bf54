"""`make up` under supervision: supervisord runs every Procfile line and restarts what crashes.

honcho (the previous runner) stops every process when one exits, so one crash took the ingress
and every app with it. supervisord (maintained, from PyPI) restarts each program on its own:

* a program that dies is restarted at once; one that dies within START_SECONDS of its start is
  retried with a growing delay (1 s, 2 s, ... START_RETRIES times) and then given up (FATAL):
  the crash-loop limit, reported on the terminal with the command to start it again;
* the other programs keep running;
* the terminal shows every line of every program prefixed with its name (the event listener,
  backend/supervise_listener.py, prints supervisord's PROCESS_LOG events), and each program
  also logs to ``DATA_DIR/logs/<name>.log`` (rotated);
* Ctrl-C (SIGINT) or SIGTERM stops every program (their whole process group) and supervisord.

The config is generated from the Procfile, so a new Procfile line is supervised with no change
here. ``supervisorctl -c DATA_DIR/run/supervisord.conf status|restart <name>`` controls it.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from backend import supervise_listener
from backend.pomegranate.procfile import parse_procfile
from backend.supervise_listener import LinePrefixer

__all__ = ["Layout", "LinePrefixer", "exec_supervisord", "listen", "render_config", "write_config"]

START_SECONDS = 3  # a program must stay up this long for its start to count
START_RETRIES = 5  # quick crashes in a row before giving up (the crash-loop limit)
STOP_WAIT_SECONDS = 15  # SIGTERM, then SIGKILL after this
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
LISTENER = "logs"  # the event listener's program name (must not clash with a Procfile type)


@dataclass(frozen=True)
class Layout:
    """Where supervisord keeps its config, socket, pid file and the programs' logs."""

    root: Path  # the checkout: programs run here, as with honcho
    run_dir: Path
    log_dir: Path

    @classmethod
    def for_data_dir(cls, root: Path, data_dir: Path) -> Layout:
        return cls(root.resolve(), (data_dir / "run").resolve(), (data_dir / "logs").resolve())

    @property
    def config(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.run_dir / "supervisor.sock"


def _value(text: str) -> str:
    # supervisord reads its config with ConfigParser interpolation: a literal % is %%.
    return text.replace("%", "%%")


def render_config(procfile_text: str, layout: Layout) -> str:
    """supervisord.conf for the programs of a Procfile (raises ValueError on a bad Procfile)."""
    programs = parse_procfile(procfile_text)
    if LISTENER in programs:
        raise ValueError(f"Procfile: the process type {LISTENER!r} is reserved for the supervisor")
    # Column width of the name prefix, as honcho aligned it.
    width = max(len(n) for n in programs)
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={_value(str(layout.log_dir / 'supervisord.log'))}",
        f"logfile_maxbytes={LOG_MAX_BYTES}",
        f"logfile_backups={LOG_BACKUPS}",
        f"pidfile={_value(str(layout.run_dir / 'supervisord.pid'))}",
        f"directory={_value(str(layout.root))}",
        "loglevel=warn",  # its restarts are reported by the listener, with the reason
        "",
        "[unix_http_server]",
        f"file={_value(str(layout.socket))}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_value(str(layout.socket))}",
        "",
        f"[eventlistener:{LISTENER}]",
        # The listener's stdout is supervisord's protocol channel; it prints on stderr, which
        # supervisord copies to its own stdout: the terminal.
        # A script run isolated and without site-packages: a bare interpreter's memory.
        "command="
        + _value(
            shlex.join(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    str(Path(supervise_listener.__file__).resolve()),
                    str(width),
                    str(START_RETRIES),
                    str(START_SECONDS),
                    str(layout.config),
                ]
            )
        ),
        "events=PROCESS_LOG,PROCESS_STATE",
        "buffer_size=1000",
        "autorestart=true",
        "stderr_logfile=/dev/stdout",
        "stderr_logfile_maxbytes=0",
        "stdout_logfile=NONE",
        "",
    ]
    for name, command in programs.items():
        log = _value(str(layout.log_dir / f"{name}.log"))
        lines += [
            f"[program:{name}]",
            # bash -c like honcho; bash execs a simple command, so the pid is the program's.
            f"command=/bin/bash -c {_value(shlex.quote(command))}",
            f"directory={_value(str(layout.root))}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECONDS}",
            # web.sh and the like start children: signal the whole group.
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log}",
            f"stdout_logfile_maxbytes={LOG_MAX_BYTES}",
            f"stdout_logfile_backups={LOG_BACKUPS}",
            "stdout_events_enabled=true",
            "",
        ]
    return "\n".join(lines)


def write_config(procfile: Path, layout: Layout) -> Path:
    text = render_config(procfile.read_text(), layout)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(text)
    return layout.config


def exec_supervisord(config: Path) -> None:
    """Replace this process with supervisord in the foreground (Ctrl-C reaches it)."""
    supervisord = Path(sys.executable).with_name("supervisord")
    os.execv(str(supervisord), [str(supervisord), "-n", "-c", str(config)])


def listen(
    width: int,
    config: str,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
) -> None:
    """The event listener (backend/supervise_listener.py) with this config's crash-loop limit."""
    supervise_listener.listen(width, config, START_RETRIES, START_SECONDS, stdin, stdout, stderr)
