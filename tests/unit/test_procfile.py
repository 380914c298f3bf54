"""Procfile parsing."""

from __future__ import annotations

import pytest

from backend.pomegranate.procfile import parse_procfile, validate_process_type


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
