"""The supervisord config generated from a Procfile, and the listener's line handling."""

from __future__ import annotations

import configparser
import io
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from backend import supervise, supervise_listener
from backend.supervise import Layout, LinePrefixer, listen, render_config

LAYOUT = Layout(Path("/srv/pt"), Path("/srv/pt/.data/run"), Path("/srv/pt/.data/logs"))


def test_every_procfile_line_is_a_restarted_program() -> None:
    text = render_config(
        "api: python -m backend api\n# comment\nweb: scripts/web.sh run 100%\n", LAYOUT
    )
    parser = configparser.ConfigParser()
    parser.read_string(text)  # supervisord reads it the same way, with % interpolation
    assert [s for s in parser.sections() if s.startswith("program:")] == [
        "program:api",
        "program:web",
    ]
    web = parser["program:web"]
    assert web["command"] == "/bin/bash -c 'scripts/web.sh run 100%'"
    assert web["autorestart"] == "true"
    assert web["startretries"] == str(supervise.START_RETRIES)
    assert web["stopasgroup"] == web["killasgroup"] == "true"
    assert web["stdout_events_enabled"] == "true"
    assert web["stdout_logfile"] == "/srv/pt/.data/logs/web.log"
    assert parser["supervisord"]["nodaemon"] == "true"
    assert "PROCESS_LOG" in parser["eventlistener:logs"]["events"]


@pytest.mark.parametrize(
    ("procfile", "message"),
    [
        ("", "defines no process"),
        ("api python\n", "expected 'type: command'"),
        ("logs: tail -f x\n", "reserved for the supervisor"),
        ("api: a\napi: b\n", "defined twice"),
    ],
)
def test_bad_procfile_is_refused(procfile: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_config(procfile, LAYOUT)


def test_prefixer_joins_partial_chunks_per_process() -> None:
    p = LinePrefixer(5)
    assert p.feed("api", "one\ntw") == [p.line("api", "one")]
    assert p.feed("gitd", "x\n") == [p.line("gitd", "x")]
    assert p.feed("api", "o\n") == [p.line("api", "two")]
    assert p.line("api", "z").endswith(" api   | z")


def _event(eventname: str, body: str) -> str:
    return f"ver:3.0 server:s serial:1 pool:logs poolserial:1 eventname:{eventname} len:{len(body)}\n{body}"


def test_listener_speaks_the_protocol_and_reports_crash_loops() -> None:
    stdin = io.StringIO(
        _event("PROCESS_LOG_STDOUT", "processname:api groupname:api pid:7 channel:stdout\nhello\n")
        + _event(
            "PROCESS_STATE_EXITED",
            "processname:api groupname:api from_state:RUNNING expected:0 pid:7",
        )
        + _event("PROCESS_STATE_FATAL", "processname:gitd groupname:gitd from_state:BACKOFF")
    )
    stdout, stderr = io.StringIO(), io.StringIO()
    listen(4, "/x/supervisord.conf", stdin, stdout, stderr)  # returns at the end of input
    assert stdout.getvalue() == "READY\nRESULT 2\nOK" * 3 + "READY\n"
    lines = stderr.getvalue().splitlines()
    assert lines[0].endswith("api        | hello")
    assert lines[1].endswith("supervisor | api exited unexpectedly (pid 7): restarting it")
    assert "gitd crashed 5 times in a row" in lines[2]
    assert "supervisorctl -c /x/supervisord.conf start gitd" in lines[2]


def test_listener_runs_as_configured_with_the_standard_library_only(tmp_path: Path) -> None:
    """The config's listener command (python -I -S on the script: no site-packages, no
    backend package) speaks the protocol, with the config's crash-loop limit in its words."""
    layout = Layout(tmp_path, tmp_path / "run d%", tmp_path / "logs")
    parser = configparser.ConfigParser()
    parser.read_string(render_config("api: python -m backend api\n", layout))
    command = shlex.split(parser["eventlistener:logs"]["command"])
    assert command[1:3] == ["-I", "-S"]
    assert command[-1] == str(layout.config)  # the % survived ConfigParser's interpolation
    events = _event(
        "PROCESS_LOG_STDOUT", "processname:api groupname:api pid:7 channel:stdout\nhi\n"
    ) + _event("PROCESS_STATE_FATAL", "processname:api groupname:api from_state:BACKOFF")
    done = subprocess.run(command, input=events, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "READY\nRESULT 2\nOK" * 2 + "READY\n"
    lines = done.stderr.splitlines()
    assert lines[0].endswith("api        | hi")
    assert (
        f"api crashed {supervise.START_RETRIES} times in a row within {supervise.START_SECONDS} s"
        in lines[1]
    )
    assert f"supervisorctl -c {layout.config} start api" in lines[1]


@pytest.mark.parametrize("args", [[], ["4", "5", "3"], ["four", "5", "3", "/x.conf"]])
def test_listener_refuses_bad_arguments(args: list[str]) -> None:
    command = [sys.executable, "-I", "-S", supervise_listener.__file__, *args]
    done = subprocess.run(command, input="", capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "usage: supervise_listener.py WIDTH RETRIES START_SECONDS CONFIG" in done.stderr
    assert done.stdout == ""  # never READY: supervisord sees it fail, not a silent listener
