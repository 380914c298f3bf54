"""Each platform server loads only its own libraries (issue 17: memory per process).

`python -m backend api|pomegranate|gitd|ingress` skips the admin CLI (typer, click), and no
server loads httpx at start: httpx imports its command line's rich and pygments with it (about
5 MB per process). Checked in a fresh interpreter, as the Procfile starts them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.servers import ROOT, run_backend

HEAVY_AND_UNUSED = ("typer", "rich", "pygments", "httpx")
SERVER_MODULES = {
    "api": "backend.api.app",
    "pomegranate": "backend.pomegranate.server",
    "gitd": "gitd.server",
    "ingress": "backend.ingress.server",
}


def loaded(server: str, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh interpreter holds once it imported `server` as it starts."""
    code = (
        "import sys\n"
        "import backend.servers\n"
        f"import {SERVER_MODULES[server]}\n"
        f"print(' '.join(m for m in {modules!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


@pytest.mark.parametrize("server", sorted(SERVER_MODULES))
def test_a_server_process_does_not_load_the_cli_or_httpx(server: str) -> None:
    assert loaded(server, HEAVY_AND_UNUSED) == []


@pytest.mark.parametrize("server", ["pomegranate", "gitd", "ingress"])
def test_only_the_api_loads_the_password_hasher(server: str) -> None:
    # backend.security (keys, encryption) is everyone's; argon2-cffi is the API's alone.
    assert loaded(server, ("argon2",)) == []


def test_the_admin_commands_still_run_through_typer() -> None:
    done = run_backend("--help")
    done.check_returncode()
    for command in ("migrate", "quota", "supervise", "api", "pomegranate", "gitd", "ingress"):
        assert command in done.stdout


def test_the_api_parses_ssh_keys_without_asyncssh() -> None:
    # asyncssh (about 18 MB of modules) is gitd's: the API parses keys with cryptography.
    code = (
        "import sys\n"
        "import backend.servers, backend.api.app\n"
        "from cryptography.hazmat.primitives.asymmetric import ed25519\n"
        "from cryptography.hazmat.primitives import serialization as s\n"
        "from backend.services.keys import parse_public_key\n"
        "key = ed25519.Ed25519PrivateKey.generate().public_key()\n"
        "parse_public_key(key.public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH).decode())\n"
        "print('asyncssh' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("server", ["pomegranate", "gitd", "ingress"])
def test_settings_are_read_without_pydantic(server: str) -> None:
    # pydantic-settings cost about 6 MB in each process that loads pydantic for nothing else
    # (issue 17); the API still loads pydantic, through Tortoise's JSON fields.
    assert loaded(server, ("pydantic", "pydantic_settings", "pydantic_core")) == []


@pytest.mark.parametrize("command", ["api", "migrate"])
def test_a_bad_setting_stops_a_command_with_one_line(command: str) -> None:
    import os

    done = run_backend(command, env={**os.environ, "PAASTECH_API_PORT": "eighty"})
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "paastech: setting api_port (PAASTECH_API_PORT): Expected `int`, got `str`"
    )
