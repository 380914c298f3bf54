"""Completion's API lookups give up instead of blocking the shell (cli/completion.py)."""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import completion


@pytest.fixture
def silent_api() -> Iterator[str]:
    """An API address that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/graphql"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 2.0), ("30", 30.0), ("0.5", 0.5), ("0", 2.0), ("-1", 2.0), ("x", 2.0), ("inf", 2.0)],
)
def test_the_timeout_comes_from_the_environment_when_it_is_a_positive_number(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: float
) -> None:
    monkeypatch.setenv(completion.TIMEOUT_ENV, value)
    assert completion.lookup_seconds() == expected


def test_a_silent_api_completes_nothing_and_caches_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, silent_api: str
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PAASTECH_TOKEN", "t" * 40)
    monkeypatch.setenv(completion.TIMEOUT_ENV, "0.2")
    assert completion._lookup(silent_api, "projects", None) == []
    assert not (tmp_path / "paastech" / "completion.json").exists()
