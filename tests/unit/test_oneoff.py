"""The pure parts of one-off commands (issue 14): the command and the /run websocket's frames."""

from __future__ import annotations

import json

import pytest

from backend.api.run_ws import _input, parse_start
from backend.errors import ValidationFailed
from backend.services.oneoff import MAX_ARGS, check_command, terminal_size
from cli.commands.run import run_url


def test_a_command_is_a_non_empty_argv_of_strings() -> None:
    assert check_command(["sh", "-c", "exit 3"]) == ["sh", "-c", "exit 3"]
    for bad in (None, [], [""], ["  "], "ls", ["ls", 3], ["a\x00b"], ["x"] * (MAX_ARGS + 1)):
        with pytest.raises(ValidationFailed) as info:
            check_command(bad)
        assert info.value.field == "command"


def test_the_start_frame() -> None:
    start = {"project": "app", "command": ["ls"], "tty": True, "rows": 24, "cols": 80}
    request = parse_start(json.dumps(start))
    assert (request.project, request.command, request.tty, request.detach) == (
        "app",
        ["ls"],
        True,
        False,
    )
    assert (request.rows, request.cols) == (24, 80)
    # Only a real true is true; sizes must be integers.
    loose = parse_start(json.dumps({"project": "app", "command": ["ls"], "tty": 1, "rows": "9"}))
    assert (loose.tty, loose.rows) == (False, 0)
    for bad in (None, "", "not json", "[]", '{"command": ["ls"]}', '{"project": "a"}'):
        with pytest.raises(ValidationFailed):
            parse_start(bad)


def test_input_frames() -> None:
    assert _input({"bytes": b"abc"}).stdin == b"abc"  # type: ignore[union-attr]
    assert _input({"text": '{"type": "stdin_closed"}'}).stdin_closed  # type: ignore[union-attr]
    resize = _input({"text": '{"type": "resize", "rows": 30, "cols": 100}'})
    assert resize is not None and (resize.resize.rows, resize.resize.cols) == (30, 100)
    for ignored in ('{"type": "resize", "rows": "x"}', '{"type": "resize", "rows": 0}', "{", "1"):
        assert _input({"text": ignored}) is None
    assert terminal_size(10**6, 80) is None


def test_run_url_sits_beside_the_graphql_endpoint() -> None:
    assert run_url("http://127.0.0.1:8000/graphql") == "ws://127.0.0.1:8000/run"
    assert run_url("https://paas.example.com/api/graphql/") == "wss://paas.example.com/api/run"
