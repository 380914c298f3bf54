"""Platform processes for benchmarks: subprocesses on free 127.0.0.1 ports (as the tests do)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.servers import stop_process

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def platform_env(data_dir: Path, **settings: object) -> dict[str, str]:
    """The environment of a platform process: only our PAASTECH_* settings, a fixed key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAASTECH_")}
    env["PAASTECH_DATA_DIR"] = str(data_dir)
    env["PAASTECH_DATABASE_URL"] = ""
    env["PAASTECH_SECRET_KEY"] = "bench-secret-key-0123456789"
    env["PAASTECH_DEVELOPMENT"] = "false"
    for key, value in settings.items():
        env[f"PAASTECH_{key.upper()}"] = str(value)
    return env


def run_python(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """`python <args>` to completion; its stdout. Raises with stderr if it fails."""
    done = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


@contextmanager
def server(args: list[str], env: dict[str, str], health_url: str, log: Path) -> Iterator[None]:
    """Run `python <args>` until the block ends; waits for `health_url` to answer first."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=out, stderr=out)
        try:
            wait_http(health_url, proc, log)
            yield
        finally:
            stop_process(proc)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"process for {url} exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")
