"""The CLI's start-up (issue 13): gql, graphql-core, httpx and websockets are imported on the first
request, not when `paastech` starts; `--help`, completion and `version` never load them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from cli.client import Api, CliError, ConnectionLost, tls_options
from tests.support.servers import ROOT

# What a request needs and start-up must not pay for (about half of the CLI's start before).
NETWORK_STACK = ("gql", "graphql", "httpx", "websockets")

# Runs `paastech ARGS...` in this interpreter and reports, at exit, which of the watched packages
# got imported (a fresh process: this test process has imported them already; a None entry is
# an import refused, not a module).
PROBE = """
import atexit, json, sys
watched = set({watched!r})
atexit.register(lambda: sys.stderr.write("\\nLOADED " + json.dumps(sorted(
    {{name.split(".")[0] for name, module in sys.modules.items() if module is not None}} & watched
)) + "\\n"))
sys.argv = ["paastech", *{args!r}]
from cli.main import app
app(prog_name="paastech")
"""


def loaded_by(
    *args: str, env: dict[str, str] | None = None, watched: tuple[str, ...] = NETWORK_STACK
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(watched=watched, args=list(args))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    marker = [line for line in proc.stderr.splitlines() if line.startswith("LOADED ")]
    assert marker, f"no import report from paastech {args}: {proc.stderr}"
    return proc, json.loads(marker[-1].removeprefix("LOADED "))


def test_importing_the_cli_loads_no_network_library() -> None:
    code = (
        "import json, sys; import cli.main; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({NETWORK_STACK!r}))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "projects:create"),
        (["projects:create", "--help"], "--no-remote"),
        (["completion", "bash"], "complete -F _paastech_complete paastech"),
        (["__complete", "proj"], "projects:create"),
        (["version"], "paastech "),
    ],
)
def test_commands_that_ask_nothing_load_no_network_library(args: list[str], expected: str) -> None:
    proc, loaded = loaded_by(*args)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    assert loaded == []


def test_a_request_loads_the_client_and_reports_an_unreachable_api(
    unused_port: int,
) -> None:
    """The lazily imported client still turns a refused connection into the CLI's error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAASTECH_")}
    env.update(PAASTECH_API_URL=f"http://127.0.0.1:{unused_port}/graphql", PAASTECH_TOKEN="t")
    proc, loaded = loaded_by("projects", env=env)
    assert proc.returncode == 1, proc.stderr
    assert f"error: cannot reach the PaaSTech API at http://127.0.0.1:{unused_port}/" in proc.stderr
    assert "gql" in loaded and "httpx" in loaded


async def test_client_errors_with_lazy_imports(unused_port: int) -> None:
    """execute and subscribe raise the CLI's errors from gql's, imported inside them."""
    api = Api(f"http://127.0.0.1:{unused_port}/graphql", "t", timeout=5)
    with pytest.raises(CliError, match="cannot reach the PaaSTech API"):
        await api.execute("Me")
    with pytest.raises(ConnectionLost):
        async with api.subscribe("ApplicationStatus", project="p"):
            pass


@pytest.fixture
def unused_port() -> Iterator[int]:
    """A port that refuses connections: bound (so no one else takes it), never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_plain_http_loads_no_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """An http:// API gets an SSL context that trusts nothing (no CA bundle loaded: 0.15 s of
    CPU per command); https:// and any proxied URL keep httpx's verifying default."""
    import ssl

    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    context = tls_options("http://127.0.0.1:8000/graphql")["verify"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() == []
    assert tls_options("https://paas.example.com/graphql") == {}
    monkeypatch.setenv("HTTP_PROXY", "https://proxy.example.com:3128")
    assert tls_options("http://127.0.0.1:8000/graphql") == {}


def test_the_program_never_imports_trio(unused_port: int) -> None:
    """httpcore imports trio when installed (selenium brings it here): 0.1 s of CPU per command
    the asyncio-only CLI answers with "not installed"; a request still works without it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAASTECH_")}
    env.update(PAASTECH_API_URL=f"http://127.0.0.1:{unused_port}/graphql", PAASTECH_TOKEN="t")
    proc, loaded = loaded_by("projects", env=env, watched=("trio", "httpcore", "anyio"))
    assert "cannot reach the PaaSTech API" in proc.stderr, proc.stderr
    assert loaded == ["anyio", "httpcore"]
