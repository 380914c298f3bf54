"""Procfile parsing."""

from __future__ import annotations

import pytest

from backend.pomegranate.procfile import parse_procfile, shell_command, validate_process_type


def test_parses_types_commands_comments_and_blank_lines():
    text = (
        "\ufeff# the processes\n"
        "web: python3 app.py --port $PORT\r\n"
        "\n"
        "   worker:python3 worker.py   \n"
        "  # indented comment\n"
        "clock_2-b: sh -c 'echo a: b'\n"
    )
    assert parse_procfile(text) == {
        "web": "python3 app.py --port $PORT",
        "worker": "python3 worker.py",
        "clock_2-b": "sh -c 'echo a: b'",
    }
    assert list(parse_procfile(text)) == ["web", "worker", "clock_2-b"]


def test_accepts_bytes():
    assert parse_procfile(b"web: ./run\n") == {"web": "./run"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web: ok\njust a command\n", r"line 2: expected 'type: command'"),
        ("Web: run\n", r"line 1: invalid process type 'Web'"),
        ("\n\n1web: run\n", r"line 3: invalid process type '1web'"),
        ("we b: run\n", r"line 1: invalid process type 'we b'"),
        (": run\n", r"line 1: invalid process type ''"),
        ("web:\n", r"line 1: process type 'web' has no command"),
        ("web: a\nweb: b\n", r"line 2: process type 'web' defined twice"),
        ("# nothing\n\n", r"defines no process"),
        ("", r"defines no process"),
        (b"web: \xff\n", r"not valid UTF-8"),
        ("w" * 31 + ": run\n", r"line 1: .*at most 30 characters"),
    ],
)
def test_bad_procfiles(text, message):
    with pytest.raises(ValueError, match=message):
        parse_procfile(text)


def test_validate_process_type():
    assert validate_process_type("web") == "web"
    with pytest.raises(ValueError):
        validate_process_type("web!")


@pytest.mark.parametrize(
    ("command", "shell"),
    [
        ("gunicorn app:app --bind 0.0.0.0:$PORT", "exec gunicorn app:app --bind 0.0.0.0:$PORT"),
        ("node server.js > /tmp/log 2>&1", "exec node server.js > /tmp/log 2>&1"),
        ("python -c 'a && b'", "exec python -c 'a && b'"),
        ("sleep 3 && python3 app.py", "sleep 3 && python3 app.py"),
        ("a; b", "a; b"),
        ("a | b", "a | b"),
        ("worker &", "worker &"),
        ("FOO=1 app", "FOO=1 app"),
        ("cd sub && app", "cd sub && app"),
        ("exec app", "exec app"),
        ("echo $(date)", "echo $(date)"),
        ("if true; then app; fi", "if true; then app; fi"),
        ("app 'unterminated", "app 'unterminated"),
    ],
)
def test_shell_command_execs_single_simple_commands(command, shell):
    assert shell_command(command) == shell
