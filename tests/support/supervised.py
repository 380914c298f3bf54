"""The whole platform as `make up` runs it: the Procfile under runit (backend/supervise.py).

The web app's line is left out (tests/e2e covers it; it needs the frontend build); every other
Procfile line runs as in production, on free ports and in its own data dir and engine instance.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from backend.pomegranate.procfile import parse_procfile
from backend.supervise import Layout
from tests.support.platform import Platform, Pomegranate, remove_instance
from tests.support.registry import remove_registry_images
from tests.support.servers import ROOT, base_env, free_port, migrate, wait_http

# `sv status` words -> the states the tests wait for.
STATES = {"run": "RUNNING", "down": "DOWN", "finish": "FINISH", "starting": "STARTING"}
LEFT_OUT = {"web"}


@dataclass
class Supervised:
    proc: subprocess.Popen
    layout: Layout  # where the runit services and the programs' logs are
    output: Path  # what the terminal of `make up` shows
    ports: dict[str, int]
    env: dict[str, str]
    platform: Platform
    names: list[str] = field(default_factory=list)

    @property
    def services(self) -> Path:
        return self.layout.services

    def sv(self, *args: str) -> str:
        return subprocess.run(
            ["sv", *args], capture_output=True, text=True, timeout=30, cwd=self.services
        ).stdout

    def states(self) -> dict[str, tuple[str, int]]:
        """name -> (state, pid) as runit reports them: RUNNING, FINISH (its finish script
        runs), STARTING (down, to be started again) or DOWN (down and meant to stay down)."""
        out: dict[str, tuple[str, int]] = {}
        paths = [str(self.layout.service(n)) for n in self.names]
        # e.g. "run: /d/run/sv/api: (pid 123) 5s; run: log: (pid 120) 5s"
        for line in self.sv("status", *paths).splitlines():
            service = line.split(";", 1)[0]
            state, _, rest = service.partition(": ")
            path, _, detail = rest.partition(": ")
            pid = int(detail.split(")")[0].removeprefix("(pid ")) if "(pid " in detail else 0
            if state == "down" and "want up" in detail:
                state = "starting"  # between an exit and runsv's restart: not settled down
            out[Path(path).name] = (STATES.get(state, state), pid)
        return out

    def pid(self, name: str) -> int:
        return self.states()[name][1]

    def answers(self, name: str) -> bool:
        port = self.ports[name]
        if name == "api":
            import httpx

            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        with socket.socket() as s:
            s.settimeout(2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def wait_serving(self, name: str, not_pid: int = 0, within: float = 60) -> int:
        """Wait until ``name`` runs with a pid other than ``not_pid`` and answers; its pid."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            state, pid = self.states().get(name, ("?", 0))
            if state == "RUNNING" and pid and pid != not_pid and self.answers(name):
                return pid
            time.sleep(0.2)
        raise TimeoutError(f"{name} not back within {within} s: {self.states()}")

    def wait_state(self, name: str, state: str = "RUNNING", within: float = 60) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            current, pid = self.states().get(name, ("?", 0))
            if current == state:
                return pid
            time.sleep(0.2)
        raise TimeoutError(f"{name} not {state} within {within} s: {self.states()}")

    def kill9(self, name: str) -> int:
        pid = self.pid(name)
        assert pid, f"{name} is not running: {self.states()}"
        os.kill(pid, signal.SIGKILL)
        return pid


def platform_procfile() -> str:
    programs = parse_procfile((ROOT / "Procfile").read_text())
    # Programs run in the Procfile's directory (here a copy in the test's data dir): the
    # checkout's scripts by their absolute path.
    return "".join(
        f"{n}: {c.replace('scripts/', f'{ROOT}/scripts/')}\n"
        for n, c in programs.items()
        if n not in LEFT_OUT
    )


@contextmanager
def supervised(
    data_dir: Path, procfile: str | None = None, **settings: object
) -> Iterator[Supervised]:
    ports = {
        "api": free_port(),
        "pomegranate": free_port(),
        "gitd": free_port(),
        "ingress": free_port(),
        # The Procfile's registry line runs too: its own, as in production (the session's
        # registry of tests/support/registry.py already holds the session's port).
        "registry": free_port(),
    }
    grpc_port = free_port()
    env = base_env(
        data_dir,
        api_port=ports["api"],
        api_grpc_port=grpc_port,
        pomegranate_port=ports["pomegranate"],
        gitd_port=ports["gitd"],
        ingress_port=ports["ingress"],
        registry_port=ports["registry"],
        login_max_failures_per_address=100_000,
        **settings,
    )
    # The Procfile says `python`: the venv's, as scripts/up.sh puts it first on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # `make up` runs the programs in the checkout, so `python -m backend` is the checkout's code;
    # here they run in a copy of the Procfile's directory, where the venv's editable install
    # would pick the main checkout's code instead of this one's (a worktree under test).
    env["PYTHONPATH"] = str(ROOT)
    migrate(env)
    workdir = data_dir / "checkout"
    workdir.mkdir(exist_ok=True)
    procfile_path = workdir / "Procfile"
    procfile_path.write_text(procfile if procfile is not None else platform_procfile())
    output = data_dir / "terminal.txt"
    with output.open("wb") as terminal:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "supervise", "--procfile", str(procfile_path)],
            env=env,
            cwd=ROOT,
            stdout=terminal,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the test runner must not reach it first
        )
    layout = Layout.for_data_dir(workdir, data_dir)  # as `python -m backend supervise` makes it
    pom = Pomegranate(ports["pomegranate"], env, layout.logs("pomegranate") / "current")
    plat = Platform(
        f"http://127.0.0.1:{ports['api']}/graphql", grpc_port, pom, data_dir, ports["ingress"]
    )
    names = list(parse_procfile(procfile_path.read_text()))
    sup = Supervised(proc, layout, output, ports, env, plat, names)
    try:
        deadline = time.monotonic() + 60
        # runsv makes supervise/ok once it supervises the service.
        while not all((layout.service(n) / "supervise" / "ok").exists() for n in names):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the supervisor did not start: {output.read_text()}")
            time.sleep(0.1)
        if procfile is None:
            wait_http(f"http://127.0.0.1:{ports['api']}/healthz", timeout=60)
            for name in ports:
                sup.wait_serving(name)
        yield sup
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        remove_instance(env["PAASTECH_INSTANCE"])
        remove_registry_images(ports["registry"])


class Load:
    """One client requesting the app through the ingress without pause; records every result,
    and for a failure what it was (a status and the start of its body, or the error)."""

    def __init__(self, port: int, project: str) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.headers = {"Host": f"{project}.localhost"}
        self.results: list[tuple[float, bool]] = []
        self.reasons: dict[int, str] = {}  # index in results -> why it failed
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            while not self._stop.is_set():
                reason = ""
                try:
                    response = await http.get(self.url, headers=self.headers)
                    if response.status_code != 200:
                        reason = f"{response.status_code}: {response.text[:120].strip()}"
                except httpx.HTTPError as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(0.05)  # refused at once while the ingress is down
                if reason:
                    self.reasons[len(self.results)] = reason
                self.results.append((time.monotonic(), not reason))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    def failures_since(self, index: int) -> list[str]:
        """What failed from ``index`` on, each with its time from the first result after it."""
        start = self.results[index][0] if index < len(self.results) else time.monotonic()
        return [
            f"+{self.results[i][0] - start:.2f}s {reason}"
            for i, reason in sorted(self.reasons.items())
            if i >= index
        ]

    def gap_since(self, index: int) -> float:
        """Seconds from the first failed request after ``index`` to the next success."""
        window = self.results[index:]
        first = next((t for t, ok in window if not ok), None)
        if first is None:
            return 0.0
        back = next((t for t, ok in window if ok and t > first), None)
        return (back or window[-1][0]) - first
