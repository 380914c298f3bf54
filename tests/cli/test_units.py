"""The CLI's parsing and storage helpers, in process (fast)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer

from cli import config, output
from cli.client import CliError
from cli.commands.releases import parse_memory, parse_process, parse_scale
from cli.commands.settings import parse_assignments
from cli.gitremote import project_from_url


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("ssh://git@127.0.0.1:2222/hello.git", "hello"),
        ("ssh://git@paas.example.com/my-app.git", "my-app"),
        ("git@paas.example.com:my-app.git", "my-app"),
        ("https://paas.example.com/git/my-app", "my-app"),
        ("ssh://git@host:2222/Not_Valid.git", None),
        ("ssh://git@host:2222/", None),
    ],
)
def test_project_from_remote_url(url: str, name: str | None) -> None:
    assert project_from_url(url) == name


def test_parse_process() -> None:
    """`restart PROCESS[.N]` (issue 19): a type is every replica, TYPE.N is one."""
    assert parse_process("web") == ("web", None)
    assert parse_process("web.2") == ("web", 2)
    assert parse_process(" worker.12 ") == ("worker", 12)
    assert parse_process("clock_1-a.1") == ("clock_1-a", 1)
    for bad in ("web.x", ".2", "web.", "web.2.1", "web=2", "", "web.-1", "web.12345", "we b"):
        with pytest.raises(typer.BadParameter, match=r"is not PROCESS or PROCESS\.N"):
            parse_process(bad)
    with pytest.raises(typer.BadParameter, match=r"numbered from 1 \(web.1 is the first\)"):
        parse_process("web.0")


def test_parse_scale() -> None:
    assert parse_scale(["web=2", "worker=0"]) == [("web", 2), ("worker", 0)]
    assert parse_scale(["web=1", "web=3"]) == [("web", 3)]
    for bad in ("web", "web=", "=2", "web=-1", "web=two"):
        with pytest.raises(typer.BadParameter):
            parse_scale([bad])


@pytest.mark.parametrize(
    ("value", "mb"),
    [("256", 256), ("256m", 256), ("256M", 256), ("512mb", 512), ("1g", 1024), ("1.5G", 1536)],
)
def test_parse_memory(value: str, mb: int) -> None:
    assert parse_memory(value) == mb


@pytest.mark.parametrize("value", ["", "m", "12x", "-1m", "0.3m", "1t"])
def test_parse_memory_rejects(value: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_memory(value)


def test_parse_assignments(tmp_path: Path) -> None:
    secret = tmp_path / "cert.pem"
    secret.write_text("-----BEGIN-----\nline two = x\n")
    values = parse_assignments(
        ["A=1", "B=x=y z", "C=héllo wörld ✓", "D=", f"E=@{secret}", "F=@@literal"]
    )
    assert values == {
        "A": "1",
        "B": "x=y z",
        "C": "héllo wörld ✓",
        "D": "",
        "E": "-----BEGIN-----\nline two = x\n",
        "F": "@literal",
    }


def test_parse_assignments_rejects() -> None:
    with pytest.raises(typer.BadParameter):
        parse_assignments(["NOEQUALS"])
    with pytest.raises(typer.BadParameter, match="invalid env var name '9lower'"):
        parse_assignments(["9lower=1"])
    # Heroku and POSIX shells accept lowercase names; so does PaaSTech.
    assert parse_assignments(["lower_case=1"]) == {"lower_case": "1"}
    with pytest.raises(typer.BadParameter, match="reserved"):
        parse_assignments(["PORT=1"])
    with pytest.raises(CliError, match="cannot read"):
        parse_assignments(["A=@/nonexistent/file"])


def test_credentials_file_is_private_and_per_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config.credentials_path() == tmp_path / "xdg" / "paastech" / "credentials.json"
    assert config.load("http://a/graphql") is None
    config.save("http://a/graphql", config.Credentials("pt_a", "alice", "7", "cli"))
    config.save("http://b/graphql", config.Credentials("pt_b", "bob"))
    path = config.credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.load("http://a/graphql") == config.Credentials("pt_a", "alice", "7", "cli")
    assert config.load("http://b/graphql").token == "pt_b"
    assert config.forget("http://a/graphql") is True
    assert config.load("http://a/graphql") is None
    assert config.load("http://b/graphql").token == "pt_b"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("{not json")
    assert config.load("http://b/graphql") is None


def test_age() -> None:
    now = datetime(2024, 1, 2, 12, 0, tzinfo=UTC)
    at = lambda delta: (now - delta).isoformat()  # noqa: E731
    assert output.age(at(timedelta(seconds=5)), now) == "5s ago"
    assert output.age(at(timedelta(minutes=3)), now) == "3m ago"
    assert output.age(at(timedelta(hours=5)), now) == "5h ago"
    assert output.age(at(timedelta(days=2)), now) == "2d ago"
    assert output.age(None, now) == "-"
