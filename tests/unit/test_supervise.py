"""The supervisord config generated from a Procfile, and the listener's line handling."""

from __future__ import annotations

import configparser
import io
from pathlib import Path

import pytest

from backend import supervise
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
