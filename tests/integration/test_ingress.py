"""The embedded ingress end to end: `python -m backend ingress` as a subprocess, app containers
started with the real DockerRuntime, requests through the ingress's 127.0.0.1 port.

No fixture app serves a large body (and fixtures are not changed for this test), so the 20 MB
*download* runs in-process instead: the ingress's proxy in front of a local aiohttp upstream
(the tests at the end, which need no Docker); they also pin forwarded headers, retries, 413, 502
and 504.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from backend.ingress import proxy as proxy_module
from backend.ingress.proxy import Proxy, make_session
from backend.ingress.routes import Container, RouteTable
from backend.ingress.server import create_app
from backend.pomegranate.docker_runtime import DockerRuntime
from backend.pomegranate.runtime import BuiltImage, ContainerInfo, ProcessSpec
from backend.settings import Settings
from tests.integration.test_docker_runtime import Logs
from tests.support.platform import tar_dir
from tests.support.polling import within
from tests.support.servers import ROOT, free_port, stop_process
from tests.support.tls import ssl_context

docker = pytest.mark.docker

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
                    r = httpx.get(
                        f"http://127.0.0.1:{port}/",
                        headers={"Host": "x.invalid"},
                        verify=ssl_context(),
                    )
                    if r.status_code == 404:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"ingress did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield Ingress(port, log_path)
        finally:
            stop_process(proc)


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
    application: int = 1,
) -> ContainerInfo:
    spec = ProcessSpec(
        project=project,
        # Images are named by registry digest (issue 10): the release number is the caller's.
        application=application,
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


@docker
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


@docker
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


@docker
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


@docker
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


@docker
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

    async def answered(count: int) -> None:
        """Wait for ``count`` more answers (or failures) under the load."""
        wanted = served.total() + len(failures) + count
        async with within(60, f"{count} more answers"):
            while served.total() + len(failures) < wanted:
                await asyncio.sleep(0.05)

    clients = [asyncio.create_task(load()) for _ in range(4)]
    try:
        await answered(20)
        new = await start_web(runtime, project, v2, application=2)
        # The new release is in rotation before the old one goes.
        await wait_for(
            ingress, host, lambda r: ok(r) and r.json()["env"]["PAASTECH_RELEASE"] == "2"
        )
        await answered(20)
        await runtime.stop(old.id)
        await answered(50)
    finally:
        stop.set()
        await asyncio.gather(*clients)

    assert failures == [], failures[:10]
    assert served["1"] > 0 and served["2"] > 0, served
    # The old replica is gone from the rotation: everything now lands on the new one.
    for _ in range(5):
        response = await ingress.get(host)
        assert response.json()["hostname"] == new.id[:12]


@docker
async def test_stopped_app_answers_503_then_recovers(ingress, runtime, project):
    built = await build(runtime, project, "python")
    only = await start_web(runtime, project, built)
    host = f"{project}.localhost"
    await wait_for(ingress, host, ok)

    await runtime.stop(only.id)
    response = await wait_for(ingress, host, lambda r: r.status_code in (502, 503), timeout=10)
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


# ----------------------------------------------------------------------------------- in-process
# The proxy in front of a local aiohttp upstream, with a hand-made route table (no Docker).

LOCAL_HOST = "local.test"


async def upstream_app() -> web.Application:
    async def headers(request: web.Request) -> web.Response:
        return web.json_response(
            {"headers": {k.lower(): v for k, v in request.headers.items()}, "path": request.path_qs}
        )

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 20 * MB
        await response.prepare(request)
        chunk = b"y" * MB
        for _ in range(20):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def count(request: web.Request) -> web.Response:
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
        return web.json_response(
            {
                "received": total,
                "chunked": "chunked" in request.headers.get("Transfer-Encoding", ""),
            }
        )

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/headers", headers)
    app.router.add_get("/big", big)
    app.router.add_post("/count", count)
    app.router.add_get("/slow", slow)
    return app


@contextlib.asynccontextmanager
async def serving(app: web.Application):
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


def local_container(cid: str, port: int, replica: int = 1) -> Container:
    return Container(
        id=cid,
        name=cid,
        project="local",
        application=1,
        replica=replica,
        hostnames=(LOCAL_HOST,),
        container_port=5000,
        host_port=port,
        running=True,
        health=None,
    )


@contextlib.asynccontextmanager
async def local_ingress(*ports: int, session: aiohttp.ClientSession | None = None):
    table = RouteTable()
    table.sync(
        [local_container(f"c{i}", p, i + 1) for i, p in enumerate(ports)], trust_running=True
    )
    session = session or make_session()
    try:
        async with (
            serving(create_app(Proxy(table, session))) as port,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"Host": LOCAL_HOST}, timeout=30
            ) as client,
        ):
            yield client
    finally:
        await session.close()


async def test_forwarded_headers_and_hop_by_hop_headers():
    async with serving(await upstream_app()) as up, local_ingress(up) as client:
        response = await client.get(
            "/headers?q=a%2Fb",
            headers={
                "Host": f"{LOCAL_HOST}:8080",
                "X-Forwarded-For": "203.0.113.7",
                "X-Forwarded-Proto": "https",
                "Connection": "keep-alive, X-Secret-Hop",
                "X-Secret-Hop": "drop me",
                "X-App": "kept",
            },
        )
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == "/headers?q=a%2Fb"
    headers = body["headers"]
    assert headers["host"] == f"{LOCAL_HOST}:8080"
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"{LOCAL_HOST}:8080"
    assert headers["x-app"] == "kept"
    assert "x-secret-hop" not in headers
    assert "user-agent" in headers  # httpx's own, passed through; aiohttp adds none


async def test_20mb_download_and_chunked_upload_stream_through():
    async with serving(await upstream_app()) as up, local_ingress(up) as client:
        received = 0
        async with client.stream("GET", "/big") as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(20 * MB)
            async for chunk in response.aiter_raw():
                received += len(chunk)
        assert received == 20 * MB

        async def body():
            for _ in range(20):
                yield b"z" * MB

        response = await client.post("/count", content=body())  # no length: chunked
        assert response.json() == {"received": 20 * MB, "chunked": True}


async def test_refused_replica_is_skipped_and_all_refused_is_502():
    dead = free_port()  # nothing listens there
    async with serving(await upstream_app()) as up, local_ingress(dead, up) as client:
        for _ in range(6):  # round robin starts at the dead one every other request
            assert (await client.get("/headers")).status_code == 200
            response = await client.post("/count", content=b"small body")
            assert response.json()["received"] == 10
    async with local_ingress(free_port(), free_port()) as client:
        response = await client.get("/headers")
        assert response.status_code == 502
        assert response.text.strip() == f"Bad gateway: {LOCAL_HOST} is not answering"


def resetting_session(port: int) -> aiohttp.ClientSession:
    """Every request to ``port`` fails as a pooled connection the upstream closed meanwhile
    does: aiohttp's "Cannot write to closing transport" (ClientConnectionResetError)."""

    async def reset(_session: object, _context: object, params: Any) -> None:
        if params.url.port == port:
            raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(reset)
    return aiohttp.ClientSession(trace_configs=[trace], auto_decompress=False)


async def test_a_connection_reset_before_the_answer_is_retried_when_idempotent():
    resetting = free_port()
    async with (
        serving(await upstream_app()) as up,
        local_ingress(resetting, up, session=resetting_session(resetting)) as client,
    ):
        for _ in range(6):  # round robin: every other request goes to the resetting one first
            assert (await client.get("/headers")).status_code == 200
        # A POST may have reached the upstream: never sent twice, a 502 instead.
        statuses = [(await client.post("/count", content=b"x")).status_code for _ in range(2)]
        assert sorted(statuses) == [200, 502]


async def test_upstream_timeout_is_504_and_oversized_body_is_413(monkeypatch):
    monkeypatch.setattr(proxy_module, "RESPONSE_HEADERS_TIMEOUT", 0.5)
    monkeypatch.setattr(proxy_module, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(proxy_module, "MAX_BODY_BYTES", MB)
    async with serving(await upstream_app()) as up, local_ingress(up) as client:
        response = await client.get("/slow")
        assert response.status_code == 504
        response = await client.post("/count", content=b"x" * (2 * MB))
        assert response.status_code == 413

        async def body():
            for _ in range(4):
                yield b"x" * (MB // 2)

        response = await client.post("/count", content=body())
        assert response.status_code == 413
        assert (await client.get("/headers")).status_code == 200


@contextlib.asynccontextmanager
async def cut_off_upstream():
    """A replica that answers headers and part of its body, then closes (as an app that exits
    at once on a release switch's SIGTERM). Yields its port and the requests it took."""
    taken: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        taken.append(head.split(b" ", 1)[0].decode())
        length = int(
            dict(
                line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
            ).get("Content-Length", "0")
        )
        if length:
            await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n")
        writer.write(b"only ten b")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], taken
    finally:
        server.close()
        await server.wait_closed()


async def test_answer_cut_short_is_retried_on_the_next_replica_when_idempotent():
    """A release switch's race: the old replica dies between its headers and its body's end.
    A GET's small answer is read whole first, so it is retried on the next replica; a POST's is
    relayed as it comes and cut off (never passed off as complete)."""
    async with (
        cut_off_upstream() as (dying, taken),
        serving(await upstream_app()) as up,
        local_ingress(dying, up) as client,
    ):
        for _ in range(6):  # round robin: every other request goes to the dying one first
            response = await client.get("/headers")
            assert response.status_code == 200
            assert response.json()["path"] == "/headers"
        assert taken.count("GET") == 3
        posts = [client.post("/count", content=b"small body") for _ in range(2)]
        outcomes = await asyncio.gather(*posts, return_exceptions=True)
        assert taken.count("POST") == 1
        assert sum(isinstance(o, httpx.RemoteProtocolError) for o in outcomes) == 1, outcomes
        assert [o.json() for o in outcomes if isinstance(o, httpx.Response)] == [
            {"received": 10, "chunked": False}
        ]


async def test_a_replica_made_ready_during_a_request_answers_it_when_the_old_one_goes():
    """A release switch's other race (CI, stop 27: one 502 in a Flask redeploy under load): a
    GET reached the old release's only replica just before the new one was ready, and the old
    one closed it unanswered on SIGTERM. The retry reads the table again and tries the new one."""
    taken = asyncio.Event()
    switched = asyncio.Event()

    async def old_replica(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        taken.set()
        await switched.wait()
        writer.close()  # SIGTERM: gone without an answer

    old = await asyncio.start_server(old_replica, "127.0.0.1", 0)
    table = RouteTable()
    table.sync([local_container("old", old.sockets[0].getsockname()[1])], trust_running=True)
    session = make_session()
    try:
        async with (
            serving(await upstream_app()) as new_port,
            serving(create_app(Proxy(table, session))) as port,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"Host": LOCAL_HOST}, timeout=30
            ) as client,
        ):
            request = asyncio.create_task(client.get("/headers"))
            await taken.wait()
            # The new replica is ready and the old one out of rotation, as the switch leaves them.
            table.sync([local_container("new", new_port, 2)], trust_running=True)
            switched.set()
            response = await request
        assert response.status_code == 200, response.text
        assert response.json()["path"] == "/headers"
    finally:
        await session.close()
        old.close()
        await old.wait_closed()
