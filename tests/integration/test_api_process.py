"""`python -m backend api` exits non-zero when its startup fails, instead of hanging.

Under a supervisor a hung API looks alive and is never restarted; an exit is restarted (and
reported). Both failures below used to leave the process running after uvicorn's
"Application startup failed. Exiting." (the database thread and the deployer's tasks)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.support.servers import base_env, free_port, migrate, run_backend

# A guard against the hang this file tests for, not a duration being measured.
HANG_GUARD_S = 120


def run_api(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_backend("api", env=env, timeout=HANG_GUARD_S)


def test_api_exits_when_the_database_is_not_migrated(tmp_path: Path) -> None:
    env = base_env(tmp_path, api_port=free_port(), api_grpc_port=free_port(), host="127.0.0.1")
    done = run_api(env)
    assert done.returncode != 0, done.stderr
    assert "Application startup failed" in done.stderr
    assert "no such table" in done.stderr


def test_api_exits_when_its_internal_grpc_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        grpc_port = taken.getsockname()[1]
        env = base_env(tmp_path, api_port=free_port(), api_grpc_port=grpc_port, host="127.0.0.1")
        migrate(env)
        done = run_api(env)
    assert done.returncode != 0, done.stderr
    assert f"Failed to bind to address 127.0.0.1:{grpc_port}" in done.stderr
    # Nothing served after the failure: the HTTP port was never announced.
    assert "Uvicorn running" not in done.stderr
