"""The embedded ingress end to end: `python -m backend ingress` as a subprocess, app containers
started with the real DockerRuntime, requests through the ingress's 127.0.0.1 port.

Not covered here: a 20 MB *download* (no fixture app serves a large body, and fixtures are not
changed for this test); the upload path is covered with the dockerfile fixture's POST /echo.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiodocker
import aiohttp
import httpx
import pytest

from backend.pomegranate.docker_runtime import DockerRuntime
from backend.pomegranate.runtime import BuiltImage, ContainerInfo, ProcessSpec
from backend.settings import Settings
from tests.integration.test_docker_runtime import Logs, tar_dir
from tests.support.servers import ROOT, free_port

pytestmark = pytest.mark.docker

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"
SETTINGS = Settings()
MB = 1024 * 1024


class Ingress:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def client(self, host: str, **kw) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Host": host}, timeout=30, **kw)

    async def get(self, host: str, path: str = "/") -> httpx.Response:
        async with self.client(host) as client:
            return await client.get(path)


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    data_dir = tmp_path_factory.mktemp("ingress")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAASTECH_")}
    env.update(
        PAASTECH_INGRESS_PORT=str(port),
        PAASTECH_HOST="127.0.0.1",
        PAASTECH_DATA_DIR=str(data_dir),
    )
    log_path = data_dir / "ingress.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "ingress"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"ingress exited with {proc.returncode}:\n{log_path.read_text()}")
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "x.invalid"})
                    if r.status_code == 404:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"ingress did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield Ingress(port, log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
async def runtime():
    rt = DockerRuntime(SETTINGS)
    yield rt
    await rt.close()


@pytest.fixture
async def project(runtime: DockerRuntime):
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    for info in await runtime.list_containers(name):
        await runtime.remove(info.id)
    for tag in await runtime.list_images(name):
        with contextlib.suppress(aiodocker.DockerError):
            await runtime.remove_image(tag, force=True)


async def build(runtime: DockerRuntime, project: str, app: str, application: int = 1) -> BuiltImage:
    return await runtime.build(project, application, tar_dir(APPS / app), Logs())


def hostnames(project: str) -> list[str]:
    return [f"{project}.localhost", f"custom-{project}.example.test"]


async def start_web(
    runtime: DockerRuntime,
    project: str,
    built: BuiltImage,
    replica: int = 1,
    health_path: str | None = "/health",
) -> ContainerInfo:
    spec = ProcessSpec(
        project=project,
        application=int(built.image.rsplit(":", 1)[1]),
        process_type="web",
        replica=replica,
        image=built.image,
        command=built.plan.processes.get("web"),
        env={},
        port=built.plan.exposed_port or SETTINGS.default_port,
        hostnames=hostnames(project),
        memory_mb=SETTINGS.default_memory_mb,
        cpu=SETTINGS.default_cpu,
        pids_limit=SETTINGS.pids_limit,
        health_path=health_path,
    )
    info = await runtime.start(spec)
    await runtime.wait_healthy(info, health_path, 30)
    return info


async def wait_for(ingress: Ingress, host: str, predicate, timeout: float = 20.0):  # noqa: ASYNC109
    """GET / through the ingress until predicate(response) holds; returns that response."""
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            last = await ingress.get(host)
            if predicate(last):
                return last
        await asyncio.sleep(0.1)
    detail = f"{last.status_code} {last.text!r}" if last is not None else "no answer"
    pytest.fail(f"{host}: condition not met after {timeout}s (last: {detail})")


def ok(response: httpx.Response) -> bool:
    return response.status_code == 200


# ----------------------------------------------------------------------------------- tests


async def test_routes_default_and_custom_hostnames_and_404s_unknown(ingress, runtime, project):
    built = await build(runtime, project, "python")
    info = await start_web(runtime, project, built)
    default, custom = hostnames(project)

    response = await wait_for(ingress, default, ok)
    body = response.json()
    assert body["app"] == "python"
    assert body["env"]["PAASTECH_APP"] == project
    assert body["hostname"] == info.id[:12]

    async with ingress.client(f"{custom.upper()}:{ingress.port}") as client:
        response = await client.get("/")
    assert response.status_code == 200 and response.json()["app"] == "python"

    # Path, query and forwarded headers reach the app (its 404 echoes the path back).
    async with ingress.client(default) as client:
        response = await client.get("/missing?x=1&y=%20z")
    assert response.status_code == 404
    assert response.json()["path"] == "/missing?x=1&y=%20z"

    response = await ingress.get(f"nope-{project}.localhost")
    assert response.status_code == 404
    assert response.text.strip() == f"No app at nope-{project}.localhost"
    assert response.headers["content-type"].startswith("text/plain")


async def test_three_replicas_all_receive_traffic(ingress, runtime, project):
    built = await build(runtime, project, "python")
    infos = await asyncio.gather(
        *(start_web(runtime, project, built, replica=i) for i in (1, 2, 3))
    )
    expected = {info.id[:12] for info in infos}
    host = f"{project}.localhost"

    deadline = time.monotonic() + 20
    seen: Counter[str] = Counter()
    async with ingress.client(host) as client:
        while time.monotonic() < deadline:
            response = await client.get("/")
            if response.status_code == 200:
                seen[response.json()["hostname"]] += 1
            if set(seen) == expected and min(seen.values()) >= 3:
                break
    assert set(seen) == expected, seen
    assert min(seen.values()) >= 3, seen


async def test_websocket_echo_through_the_ingress(ingress, runtime, project):
    built = await build(runtime, project, "websocket")
    await start_web(runtime, project, built, health_path=None)
    host = f"{project}.localhost"
    await wait_for(ingress, host, ok)

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{ingress.url}/ws", headers={"Host": host}) as ws,
    ):
        await ws.send_str("hello through the ingress")
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.TEXT
        assert message.data == "hello through the ingress"
        payload = os.urandom(100_000)
        await ws.send_bytes(payload)
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.BINARY
        assert message.data == payload
        await ws.close()
    assert ws.closed


async def test_20mb_upload_streams_through(ingress, runtime, project):
    built = await build(runtime, project, "dockerfile")
    await start_web(runtime, project, built)
    host = f"{project}.localhost"
    await wait_for(ingress, host, ok)

    size = 20 * MB

    async def body():
        chunk = b"x" * MB
        for _ in range(20):
            yield chunk

    async with ingress.client(host) as client:
        response = await client.post("/echo", content=body(), headers={"Content-Length": str(size)})
    assert response.status_code == 200, response.text
    assert response.json() == {"app": "dockerfile", "received": size}


async def test_replacing_a_replica_under_load_fails_no_request(ingress, runtime, project):
    v1 = await build(runtime, project, "python", application=1)
    v2 = await build(runtime, project, "python", application=2)
    old = await start_web(runtime, project, v1)
    host = f"{project}.localhost"
    await wait_for(ingress, host, ok)

    failures: list[str] = []
    served: Counter[str] = Counter()
    stop = asyncio.Event()

    async def load() -> None:
        async with ingress.client(host) as client:
            while not stop.is_set():
                try:
                    response = await client.get("/")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text.strip()}")
                else:
                    served[response.json()["env"]["PAASTECH_RELEASE"]] += 1

    clients = [asyncio.create_task(load()) for _ in range(4)]
    try:
        await asyncio.sleep(1.0)
        new = await start_web(runtime, project, v2)
        # The new release is in rotation before the old one goes.
        await wait_for(
            ingress, host, lambda r: ok(r) and r.json()["env"]["PAASTECH_RELEASE"] == "2"
        )
        await asyncio.sleep(1.0)
        await runtime.stop(old.id)
        await asyncio.sleep(2.0)
    finally:
        stop.set()
        await asyncio.gather(*clients)

    assert failures == [], failures[:10]
    assert served["1"] > 0 and served["2"] > 0, served
    # The old replica is gone from the rotation: everything now lands on the new one.
    for _ in range(5):
        response = await ingress.get(host)
        assert response.json()["hostname"] == new.id[:12]


async def test_stopped_app_answers_503_then_recovers(ingress, runtime, project):
    built = await build(runtime, project, "python")
    only = await start_web(runtime, project, built)
    host = f"{project}.localhost"
    await wait_for(ingress, host, ok)

    await runtime.stop(only.id)
    started = time.monotonic()
    response = await wait_for(ingress, host, lambda r: r.status_code in (502, 503), timeout=10)
    assert time.monotonic() - started < 10
    if response.status_code == 503:
        assert response.text.strip() == f"{host} is starting or stopped"
    else:
        assert response.text.strip() == f"Bad gateway: {host} is not answering"
    # Stays down (and answers promptly) while nothing runs.
    response = await ingress.get(host)
    assert response.status_code == 503

    replacement = await start_web(runtime, project, built, replica=2)
    response = await wait_for(ingress, host, ok)
    assert response.json()["hostname"] == replacement.id[:12]
