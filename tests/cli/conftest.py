"""The `paastech` command as a subprocess, with its own config dir and HOME per test."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import ROOT, api_server

PASSWORD = "correct-horse-7"
SCRIPT = Path(sys.executable).with_name("paastech")
GIT_ID = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@dataclass
class Result:
    code: int
    out: str
    err: str
    args: tuple[str, ...]

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"paastech {' '.join(self.args)} -> {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"


@dataclass
class Cli:
    """Runs `paastech` against one API with its own XDG_CONFIG_HOME and HOME."""

    api_url: str
    home: Path
    env_extra: dict[str, str] = field(default_factory=dict)

    @property
    def config_home(self) -> Path:
        return self.home / ".config-xdg"

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PAASTECH_", "GIT_", "XDG_"))
        }
        env.update(GIT_ID)
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.config_home),
            PAASTECH_API_URL=self.api_url,
            GIT_CONFIG_NOSYSTEM="1",
            NO_COLOR="1",
            COLUMNS="200",
        )
        env.update(self.env_extra)
        return env

    def __call__(
        self, *args: str, input: str | None = None, cwd: Path | None = None, timeout: float = 60
    ) -> Result:
        argv = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "cli.main"]
        proc = subprocess.run(
            [*argv, *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=cwd or self.home,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr, args)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        result = self(*args, **kwargs)
        assert result.code == 0, str(result)
        return result

    def fails(self, code: int, *args: str, **kwargs: Any) -> Result:
        result = self(*args, **kwargs)
        assert result.code == code, str(result)
        return result

    def signup(self) -> str:
        username = f"u{secrets.token_hex(4)}"
        self.ok(
            "signup",
            "--email",
            f"{username}@example.com",
            "--username",
            username,
            input=f"{PASSWORD}\n{PASSWORD}\n",
        )
        return username

    def git(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        env = self.env()
        result = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"git {args}: {result.stderr}"
        return result


def new_cli(api_url: str, tmp_path: Path) -> Cli:
    home = tmp_path / f"home-{secrets.token_hex(3)}"
    home.mkdir()
    return Cli(api_url, home)


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One API server (SQLite, no Pomegranate) per test module."""
    data_dir = tmp_path_factory.mktemp("cli-api")
    with api_server(data_dir, login_max_failures_per_address=100_000) as url:
        yield url


@pytest.fixture
def cli(api_url: str, tmp_path: Path) -> Cli:
    """A logged-out user."""
    return new_cli(api_url, tmp_path)


@pytest.fixture
def user(cli: Cli) -> Cli:
    """A signed-up, logged-in user: signed up through the API in-process, as `paastech signup`
    leaves it (tests/cli/api_setup.py; one CLI subprocess less per test). `signup` itself is
    tested as a command in test_commands.py and test_heroku.py."""
    from tests.cli.api_setup import sign_up  # it imports this module

    sign_up(cli)
    return cli


@pytest.fixture
def other(api_url: str, tmp_path: Path) -> Cli:
    """Another signed-up Client."""
    from tests.cli.api_setup import sign_up

    c = new_cli(api_url, tmp_path)
    sign_up(c)
    return c


__all__ = ["PASSWORD", "ROOT", "Cli", "Result", "new_cli"]
