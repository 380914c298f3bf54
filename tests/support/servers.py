"""Real platform processes for tests: each runs as a subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import atexit
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import httpx

from tests.support.tls import ssl_context

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PG_ADMIN_URL = "postgres://paastech:paastech@127.0.0.1:55432/paastech"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_RESERVED: list[socket.socket] = []  # held for the life of the process


def reserved_port() -> int:
    """A port for a server started long after it is chosen (a module's gitd, whose port the
    API is told at its start), held until this process ends.

    free_port()'s port is only free when it is chosen: one chosen at collection time was
    taken by a container's published port (Docker picks those from the same ephemeral range)
    before the module ran, and its test's git push reached the app instead of gitd. This one
    is below the kernel's ephemeral range, where neither the kernel nor Docker picks, and a
    bound socket holds it: another reserved_port() cannot bind it, and the server can (both
    sides set SO_REUSEADDR, and ours never listens)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    candidates = list(range(max(1024, low - 12_000), low))
    random.shuffle(candidates)
    for port in candidates:
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", port))  # fails while anyone else holds it
        except OSError:
            holder.close()
            continue
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _RESERVED.append(holder)
        return port
    raise RuntimeError(f"no free port below {low}")


def base_env(data_dir: Path, database_url: str = "", **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAASTECH_")}
    env["PAASTECH_DATA_DIR"] = str(data_dir)
    env["PAASTECH_DATABASE_URL"] = database_url
    env["PAASTECH_SECRET_KEY"] = "test-secret-key-0123456789"
    # Each test platform manages only its own containers on the shared engine.
    env["PAASTECH_INSTANCE"] = f"test-{data_dir.name}-{os.getpid()}"
    # The session's platform registry (tests/support/registry.py), when one was started.
    for key in (
        "PAASTECH_REGISTRY_PORT",
        "PAASTECH_REGISTRY_PASSWORD",
        "PAASTECH_BUILD_BASE_STORE",
    ):
        if key in os.environ:
            env[key] = os.environ[key]
    # Every test signs up from 127.0.0.1; tests of the sign-up limit set their own.
    env["PAASTECH_SIGNUP_MAX_PER_ADDRESS"] = "100000"
    # Thousands of sign-ups and logins per run: argon2id's cheapest parameters (the tests of
    # hashing itself set the production profile).
    env["PAASTECH_PASSWORD_HASH_PROFILE"] = "cheapest"
    for key, value in settings.items():
        env[f"PAASTECH_{key.upper()}"] = str(value)
    return env


def migrate(env: dict[str, str]) -> None:
    """`python -m backend migrate` for the process env ``env``; a new SQLite data dir gets a copy
    of this test process's migrated template instead (sqlite_template)."""
    database = Path(env["PAASTECH_DATA_DIR"]) / SQLITE_FILE
    if not env.get("PAASTECH_DATABASE_URL") and not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sqlite_template(), database)
        return
    _run_migrate(env)


def run_backend(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m backend ARGS` run to its end in the checkout, its output captured as text.

    The timeout guards against a hang; it is not a duration under test.
    """
    return subprocess.run(
        [sys.executable, "-m", "backend", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def admin_quota(data_dir: Path, username: str, name: str, limit: str) -> str:
    """The administrator's `quota` command against a platform's own database; its output."""
    result = run_backend("quota", username, name, limit, env=base_env(data_dir), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _run_migrate(env: dict[str, str]) -> None:
    run_backend("migrate", env=env).check_returncode()


SQLITE_FILE = "paastech.sqlite3"  # Settings.db_url's file in the data dir


@cache
def sqlite_template() -> Path:
    """A SQLite database migrated once per test process by `python -m backend migrate`, which
    every API server started on a new data dir paid before (a Python process applying every
    migration: 1.5 s of CPU, 10-14 s on the loaded 2-core machine). A copy of it is the same
    database; an existing one (a restarted platform) is migrated by the command."""
    work = Path(tempfile.mkdtemp(prefix="paastech-test-db-"))
    atexit.register(shutil.rmtree, work, True)
    _run_migrate(base_env(work))
    template = work / SQLITE_FILE
    # The command closed its connections: the WAL is checkpointed into the file and removed.
    assert template.exists() and not template.with_name(f"{SQLITE_FILE}-wal").exists()
    return template


@contextmanager
def api_server(
    data_dir: Path,
    database_url: str = "",
    before_start: Callable[[], None] | None = None,
    **settings: object,
) -> Iterator[str]:
    """Migrate, start `python -m backend api`, wait for /healthz; yields the /graphql URL.
    ``before_start`` runs between the migration and the start (e.g. waits for the processes the
    API connects to, started before the migration so that they boot meanwhile)."""
    fixed = {k: settings.pop(k) for k in ("api_grpc_port", "pomegranate_port") if k in settings}
    for attempt in range(BIND_ATTEMPTS):
        port = free_port()
        ports = {
            "api_grpc_port": fixed.get("api_grpc_port") or free_port(),
            "pomegranate_port": fixed.get("pomegranate_port") or free_port(),  # no deploys
        }
        env = base_env(data_dir, database_url, api_port=port, **ports, **settings)
        if attempt == 0:
            migrate(env)
            if before_start is not None:
                before_start()
        log_path = data_dir / f"api-{port}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "api"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            # A free_port() taken by another process before the API bound it (two suites on one
            # machine): the API logs the failed bind; start again on new ports.
            wait_http(
                f"http://127.0.0.1:{port}/healthz",
                proc,
                failed=lambda path=log_path: _bind_failed(path),
            )
        except PortTaken:
            stop_process(proc)
            log.close()
            if attempt + 1 == BIND_ATTEMPTS or fixed:
                raise
            continue
        try:
            yield f"http://127.0.0.1:{port}/graphql"
        finally:
            stop_process(proc)
            log.close()
        return


BIND_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """The server logged that its port was taken before it could bind it."""


def _bind_failed(log: Path) -> bool:
    text = log.read_bytes()
    return b"Failed to bind to address" in text or b"address already in use" in text


def stop_process(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the process is gone."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_http(
    url: str,
    proc: subprocess.Popen | None = None,
    timeout: float = 30,
    failed: Callable[[], bool] | None = None,
) -> None:
    """Until ``url`` answers; PortTaken as soon as ``failed()`` says the server cannot bind."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if failed is not None and failed():
            raise PortTaken(f"the server for {url} could not bind its ports")
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1, verify=ssl_context()).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")
