"""The platform's real processes for end-to-end tests: Pomegranate and the API, as subprocesses."""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

from backend import deploy_output
from backend.labels import container_name
from backend.rpc import platform_pb2 as pb
from backend.rpc import platform_pb2_grpc as pb_grpc
from backend.security import internal_secret
from tests.support.servers import ROOT, api_server, base_env, free_port, stop_process
from tests.support.tls import ssl_context

TEST_SECRET = "test-secret-key-0123456789"  # what base_env gives every process
FIXTURES = ROOT / "tests" / "fixtures" / "apps"


@dataclass
class Pomegranate:
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.launch()
        self.wait_listening()

    def launch(self) -> None:
        """Start the process without waiting for it to listen (see wait_listening)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "backend", "pomegranate"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )

    def wait_listening(self) -> None:
        assert self.proc is not None
        wait_tcp(self.port, self.proc)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


@dataclass
class Platform:
    api_url: str
    api_grpc_port: int
    pomegranate: Pomegranate
    data_dir: Path
    ingress_port: int
    projects: list[str] = field(default_factory=list)

    @property
    def instance(self) -> str:
        return self.pomegranate.env["PAASTECH_INSTANCE"]

    def container(
        self, project: str, application: int, process: str = "web", replica: int = 1
    ) -> str:
        """The name this platform gives a container (backend/labels.py)."""
        return container_name(project, application, process, replica, instance=self.instance)


def wait_tcp(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@contextmanager
def platform(data_dir: Path, database_url: str = "", **settings: object) -> Iterator[Platform]:
    pom_port, grpc_port = free_port(), free_port()
    # A test may fix the ingress's port (issue 21: Pebble validates challenges on it).
    ingress_port = int(settings.pop("ingress_port", 0)) or free_port()  # type: ignore[call-overload]
    # The ingress reports request metrics to the API's internal gRPC port (issue 18).
    env = base_env(
        data_dir,
        database_url,
        pomegranate_port=pom_port,
        ingress_port=ingress_port,
        api_grpc_port=grpc_port,
        **settings,
    )
    # Pomegranate and the ingress boot while the API's database is migrated (three Python
    # processes starting one after the other took 20-60 s on a loaded 2-core machine); the API
    # starts once both listen, so its first Watch finds Pomegranate.
    pom = Pomegranate(pom_port, env, data_dir / "pomegranate.log")
    pom.launch()
    ingress_log = (data_dir / "ingress.log").open("ab")
    ingress = subprocess.Popen(
        [sys.executable, "-m", "backend", "ingress"],
        env=env,
        cwd=ROOT,
        stdout=ingress_log,
        stderr=ingress_log,
    )

    def both_listening() -> None:
        pom.wait_listening()
        wait_tcp(ingress_port, ingress)

    try:
        with api_server(
            data_dir,
            database_url,
            before_start=both_listening,
            pomegranate_port=pom_port,
            api_grpc_port=grpc_port,
            login_max_failures_per_address=100_000,
            **settings,
        ) as url:
            yield Platform(url, grpc_port, pom, data_dir, ingress_port)
    finally:
        stop_process(ingress)
        ingress_log.close()
        pom.stop()
        remove_instance(env["PAASTECH_INSTANCE"])


def remove_instance(instance: str) -> None:
    """Whatever this platform left on the engine (a failed test's containers and images)."""
    label = f"label=paastech.instance={instance}"
    containers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True
    ).stdout.split()
    if containers:
        subprocess.run(["docker", "rm", "-f", *containers], capture_output=True)
    images = subprocess.run(
        ["docker", "images", "-q", "--filter", label], capture_output=True, text=True
    ).stdout.split()
    if images:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(images))], capture_output=True)
    # Project networks (issue 11): each holds a subnet of the shared pool until removed.
    networks = subprocess.run(
        ["docker", "network", "ls", "-q", "--filter", label], capture_output=True, text=True
    ).stdout.split()
    if networks:
        subprocess.run(["docker", "network", "rm", *networks], capture_output=True)
    # Project volumes (issue 15), once their containers are gone.
    volumes = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", label], capture_output=True, text=True
    ).stdout.split()
    if volumes:
        subprocess.run(["docker", "volume", "rm", *volumes], capture_output=True)


def tar_dir(path: Path, changes: dict[str, str] | None = None) -> bytes:
    """A tar of a fixture directory, with some files replaced or added (like a new commit)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for file in sorted(path.rglob("*")):
            if "__pycache__" in file.parts:
                continue
            if file.is_file() and file.relative_to(path).as_posix() not in (changes or {}):
                tar.add(file, arcname=file.relative_to(path).as_posix())
        for name, text in (changes or {}).items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class DeployOutcome:
    ok: bool
    number: int
    url: str
    reason: str
    code: str
    lines: list[str]
    statuses: list[str]


async def push(
    platform: Platform, client_id: str | int, project: str, source: bytes, *, commit: str = ""
) -> DeployOutcome:
    """Deploy a tar through the API's internal Deployments service, as gitd does."""

    async def chunks():
        yield pb.DeployChunk(
            header=pb.DeployHeader(
                project=project, client_id=int(client_id), commit_sha=commit, cause="push"
            )
        )
        for i in range(0, len(source), 256 * 1024):
            yield pb.DeployChunk(data=source[i : i + 256 * 1024])

    lines: list[str] = []
    statuses: list[str] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{platform.api_grpc_port}") as channel:
        stub = pb_grpc.DeploymentsStub(channel)
        metadata = (("x-paastech-secret", internal_secret(TEST_SECRET)),)
        async for event in stub.Deploy(chunks(), metadata=metadata):
            kind = event.WhichOneof("event")
            if kind == "log":
                lines.append(event.log)
            elif kind == "deployed":  # the deployed line, typed: shown as gitd prints it
                lines.append(deploy_output.deployed(event.deployed.url))
            elif kind == "status":
                statuses.append(event.status.status)
            elif kind == "finished":
                f = event.finished
                return DeployOutcome(f.ok, f.application, f.url, f.reason, f.code, lines, statuses)
    raise AssertionError("the deploy stream ended without an outcome")


def fixture(name: str) -> Path:
    return FIXTURES / name


# A Dockerfile that puts a standard-library fixture on the Python base image as it is: the
# Procfile still names the processes. Its first build has no RUN step, where the Python stack's
# first build in a project creates a virtualenv (10-35 s on a loaded 2-core machine), so tests
# whose subject is not the Python stack (releases, logs, limits, one-offs) push this instead.
LIGHT_DOCKERFILE = "FROM paastech/python:bookworm\nWORKDIR /app\nCOPY . /app\n"


def light_tar(name: str, changes: dict[str, str] | None = None) -> bytes:
    """tar_dir of a Procfile fixture built from LIGHT_DOCKERFILE rather than by the Python stack."""
    return tar_dir(fixture(name), {"Dockerfile": LIGHT_DOCKERFILE, **(changes or {})})


async def get_json(port: int, path: str = "/", within: float = 20) -> dict:
    """GET 127.0.0.1:<port><path>, retrying while the app is not yet answering."""
    deadline = time.monotonic() + within
    last: Exception | None = None
    async with httpx.AsyncClient(timeout=5, verify=ssl_context()) as http:
        while time.monotonic() < deadline:
            try:
                resp = await http.get(f"http://127.0.0.1:{port}{path}")
                if resp.status_code == 200:
                    return (
                        resp.json()
                        if "json" in resp.headers.get("content-type", "")
                        else {"text": resp.text}
                    )
                last = AssertionError(f"HTTP {resp.status_code}")
            except httpx.HTTPError as exc:
                last = exc
            await asyncio.sleep(0.2)
    raise AssertionError(f"127.0.0.1:{port}{path} did not answer 200: {last}")


def docker_containers(project: str) -> list[dict[str, str]]:
    """The project's containers as the docker CLI sees them (independent of our code)."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=paastech.project={project}",
            "--format",
            '{{.Names}}\t{{.State}}\t{{.Label "paastech.application"}}',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        name, state, app = line.split("\t")
        rows.append({"name": name, "state": state, "application": app})
    return rows


def docker_inspect(name: str) -> dict:
    import json

    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def cleanup_project(project: str) -> None:
    for row in docker_containers(project):
        subprocess.run(["docker", "rm", "-f", row["name"]], capture_output=True)
    images = subprocess.run(
        ["docker", "images", "-q", f"paastech/app-{project}"], capture_output=True, text=True
    ).stdout.split()
    if images:
        subprocess.run(["docker", "rmi", "-f", *images], capture_output=True)


@contextmanager
def gitd_process(plat: Platform, port: int, **settings: object) -> Iterator[Path]:
    """`python -m backend gitd` against the platform's API; yields its log file.

    The port is chosen by the caller before the platform starts, because the API's gitUrl
    fields name it (pass gitd_port=port to platform())."""
    env = base_env(
        plat.data_dir,
        api_grpc_port=plat.api_grpc_port,
        pomegranate_port=plat.pomegranate.port,
        gitd_port=port,
        **settings,
    )
    log_path = plat.data_dir / "gitd.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "gitd"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            wait_tcp(port, proc)
            # Connecting is not enough: something else listening there accepts too (a port
            # Docker published once took a module's gitd port, and a push reached an app).
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                banner = conn.recv(64)
            if not banner.startswith(b"SSH-2.0-") or proc.poll() is not None:
                raise RuntimeError(f"port {port} answers {banner!r}, not this gitd: {log_path}")
            yield log_path
        finally:
            stop_process(proc)
