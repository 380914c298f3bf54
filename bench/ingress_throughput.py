"""Throughput and latency through the embedded ingress against the same app reached directly.

One platform (tests/support/platform.py: Pomegranate, the API and `python -m backend ingress` as
subprocesses, fresh data dir) deploys the `node` fixture app (tests/fixtures/apps/node: Node's
http module answering GET / with a ~150-byte JSON body, HTTP/1.1 keep-alive) with push(), as gitd
does. Not the `python` fixture: its ThreadingHTTPServer speaks HTTP/1.0 (a new connection per
request) with a listen backlog of 5, so at 16 concurrent clients SYNs are dropped and the
1-second TCP retransmission dominates every subject's p99 (measured: p99 ~1.1 s direct).
Then the same load (bench/load.py: keep-alive client connections, --concurrency
requests in flight, --warmup s discarded, --duration s measured) runs, one subject after the
other, against:

- direct (baseline): the container's web port as Docker publishes it on 127.0.0.1;
- embedded ingress: the ingress's 127.0.0.1 port with `Host: <project>.localhost`;
- nginx (reference): Debian's nginx as a reverse proxy on a free 127.0.0.1 port, one worker
  process (the ingress is one Python process), `proxy_pass` to the published port through an
  upstream with `keepalive 32` and HTTP/1.1, access log off. Installed with apt-get when
  missing and running as root; otherwise the row says why it was skipped.

The ratio column is subject / direct, measured in the same run. Every answer is checked (HTTP 200
and the fixture's body); errors are counted in the notes. The app container gets 2 CPUs
(setResources) instead of the default 0.5, so that the proxies, not the app's CPU quota, are
what differs between the rows. The load generator (httpx, one Python process) shares the
machine with the subjects: absolute numbers are modest; the ratios are the figure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import httpx

from bench.load import LoadResult, run_load
from bench.registry import BenchmarkFailed, Options, Row, register

NAME = "ingress-throughput"
APP = "node"
APP_CPUS = 2.0
NGINX_KEEPALIVE = 32
BODY_MARK = b'"app":"node"'

STATE = """query($p: String!) { project(name: $p) {
  liveApplication { number status }
  processes { processType replica running hostPort } } }"""
RESOURCES = """mutation($p: String!, $cpu: Float!) {
  setResources(project: $p, cpu: $cpu) { project { name } } }"""


def _check(response: httpx.Response) -> str | None:
    return None if BODY_MARK in response.content else "wrong body"


def _row(subject: str, result: LoadResult, *, baseline: bool = False, notes=()) -> Row:
    row = Row(
        benchmark=NAME,
        subject=subject,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        requests=result.requests,
        errors=result.errors,
        baseline=baseline,
        notes=list(notes),
    )
    if note := result.error_note():
        row.notes.append(note)
    return row


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_port(port: int, proc: asyncio.subprocess.Process, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise BenchmarkFailed(f"process for port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        await asyncio.sleep(0.05)
    raise BenchmarkFailed(f"nothing listens on 127.0.0.1:{port} after {within:g} s")


# --- nginx ----------------------------------------------------------------------------------


def _nginx_binary() -> tuple[str | None, str]:
    """The nginx binary, installing Debian's package when missing and possible; else (None, why)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found:
        return found, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "nginx not installed (apt-get install nginx needs root on Debian)"
    print("  installing nginx (apt-get install -y nginx)", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in ("install", "update-then-install"):
        if attempt == "update-then-install":
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode == 0:
            break
    else:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"nginx could not be installed: {tail[0][:200]}"
    # Debian's package starts a system nginx on port 80; this benchmark runs its own.
    subprocess.run(["systemctl", "stop", "nginx"], capture_output=True, check=False)
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", 1) else "")
    return (found or None), ("" if found else "nginx installed but not found on PATH")


NGINX_CONF = """\
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream app {{
        server 127.0.0.1:{upstream};
        keepalive {keepalive};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


@asynccontextmanager
async def nginx_proxy(binary: str, upstream: int) -> AsyncIterator[int]:
    """nginx in front of 127.0.0.1:<upstream>, in a temp dir, on a free port (yielded)."""
    with tempfile.TemporaryDirectory(prefix="paastech-bench-nginx-") as tmp:
        port = _free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(tmp=tmp, upstream=upstream, port=port, keepalive=NGINX_KEEPALIVE)
        )
        log_path = Path(tmp) / "stderr.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                binary,
                *("-p", tmp, "-e", f"{tmp}/error.log", "-c", str(conf), "-g", "daemon off;"),
                stdout=log,
                stderr=log,
            )
        try:
            try:
                await _wait_port(port, proc)
            except BenchmarkFailed as exc:
                detail = log_path.read_text(errors="replace").strip()[-300:]
                raise BenchmarkFailed(f"nginx did not start: {exc}: {detail}") from None
            yield port
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


# --- the benchmark --------------------------------------------------------------------------


async def _published_port(session, project: str) -> int:
    state = (await session.gql(STATE, p=project))["project"]
    for p in state["processes"]:
        if p["processType"] == "web" and p["running"] and p["hostPort"]:
            return p["hostPort"]
    raise BenchmarkFailed(f"no running web process of {project}: {state}")


async def _first_ok(url: str, headers: dict[str, str], within: float = 30) -> None:
    deadline = time.monotonic() + within
    last = "no answer"
    async with httpx.AsyncClient(timeout=5, headers=headers) as http:
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                response = await http.get(url)
                if response.status_code == 200 and _check(response) is None:
                    return
                last = f"HTTP {response.status_code}"
            await asyncio.sleep(0.1)
    raise BenchmarkFailed(f"{url} ({headers}) gave no good answer within {within:g} s: {last}")


@register(NAME, "requests/s, p50/p99: embedded ingress and nginx vs direct to the container")
async def ingress_throughput(opts: Options) -> list[Row]:
    from bench.deploy_latency import Session
    from tests.support.platform import fixture, platform, push, tar_dir

    load = {"concurrency": opts.concurrency, "duration": opts.duration, "warmup": opts.warmup}
    with tempfile.TemporaryDirectory(prefix="paastech-bench-ingress-") as tmp:
        data_dir = Path(tmp) / "platform"
        data_dir.mkdir()
        with platform(data_dir, health_check_timeout_seconds=60) as plat:
            async with httpx.AsyncClient(timeout=60) as http:
                session = Session(plat, http)
                try:
                    await session.signup()
                    project = await session.project()
                    await session.gql(RESOURCES, p=project, cpu=APP_CPUS)
                    outcome = await push(plat, session.client_id, project, tar_dir(fixture(APP)))
                    if not outcome.ok:
                        raise BenchmarkFailed(f"push failed: {outcome.reason}")
                    direct_port = await _published_port(session, project)
                    host = {"Host": f"{project}.localhost"}
                    direct_url = f"http://127.0.0.1:{direct_port}/"
                    ingress_url = f"http://127.0.0.1:{plat.ingress_port}/"
                    await _first_ok(direct_url, {})
                    await _first_ok(ingress_url, host)

                    print("  direct", file=sys.stderr, flush=True)
                    direct = await run_load(direct_url, check=_check, **load)
                    print("  embedded ingress", file=sys.stderr, flush=True)
                    ingress = await run_load(ingress_url, headers=host, check=_check, **load)
                    rows = [
                        _row(
                            "direct (published port)",
                            direct,
                            baseline=True,
                            notes=[f"{APP} fixture, {APP_CPUS:g} CPUs"],
                        ),
                        _row(
                            "embedded ingress",
                            ingress,
                            notes=["python -m backend ingress (aiohttp), one process"],
                        ),
                    ]
                    binary, why = await asyncio.to_thread(_nginx_binary)
                    if binary is None:
                        rows.append(Row(benchmark=NAME, subject="nginx (reference)", notes=[why]))
                    else:
                        async with nginx_proxy(binary, direct_port) as nginx_port:
                            nginx_url = f"http://127.0.0.1:{nginx_port}/"
                            await _first_ok(nginx_url, host)
                            print("  nginx", file=sys.stderr, flush=True)
                            nginx = await run_load(nginx_url, headers=host, check=_check, **load)
                        rows.append(
                            _row(
                                "nginx (reference)",
                                nginx,
                                notes=[f"1 worker, upstream keepalive {NGINX_KEEPALIVE}"],
                            )
                        )
                finally:
                    await session.cleanup()
    for row in rows:
        if row.requests and row.errors == row.requests:
            raise BenchmarkFailed(f"{row.subject}: every request failed ({row.notes[-1]})")
    return rows
