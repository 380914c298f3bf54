"""The embedded ingress end to end with the real platform: Pomegranate, the API and
`python -m backend ingress` as subprocesses (tests/support/platform.py), apps deployed with
push() as gitd does, every request sent to the ingress's 127.0.0.1 port with a Host header.

tests/integration/test_ingress.py covers the ingress against containers started directly with
DockerRuntime (and in-process details: forwarded headers, 413/504, the 20 MB download);
test_deployments.py has the redeploy under continuous load. Here the routing follows what the
platform does: releases, domains, scaling, a crash and Docker's restart.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator

import aiohttp
import httpx
import pytest

from tests.conftest import PASSWORD
from tests.integration.test_deployments import User
from tests.support.dns import DnsZone, dns_server
from tests.support.gqlclient import SIGNUP, Api
from tests.support.platform import (
    Platform,
    cleanup_project,
    docker_containers,
    docker_inspect,
    fixture,
    platform,
    push,
    tar_dir,
)

pytestmark = pytest.mark.docker

MB = 1024 * 1024
DOMAINS = "query($p: String!) { project(name: $p) { domains { hostname verification { value } } } }"
LIVE = "query($p: String!) { project(name: $p) { liveApplication { number status } domains { hostname default } } }"


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsZone]:
    with dns_server() as server:
        yield server


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory, dns: DnsZone) -> Iterator[Platform]:
    with platform(
        tmp_path_factory.mktemp("ingress-platform"),
        health_check_timeout_seconds=20,
        dns_resolver=dns.address,
    ) as p:
        try:
            yield p
        finally:
            for project in p.projects:
                cleanup_project(project)


@pytest.fixture(scope="module")
async def user(plat: Platform) -> User:
    name = f"u{secrets.token_hex(4)}"
    data = await Api(plat.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    return User(Api(plat.api_url, data["signup"]["token"]), data["signup"]["client"]["id"])


async def deployed(plat: Platform, user: User, app: str, changes: dict | None = None) -> str:
    project = await user.project(plat)
    outcome = await push(plat, user.id, project, tar_dir(fixture(app), changes))
    assert outcome.ok, outcome
    return project


@pytest.fixture(scope="module")
async def python_app(plat: Platform, user: User) -> str:
    """One project serving the python fixture, shared by the routing tests below."""
    return await deployed(plat, user, "python")


def client(plat: Platform, host: str, timeout: float = 10) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{plat.ingress_port}", headers={"Host": host}, timeout=timeout
    )


async def get(plat: Platform, host: str, path: str = "/") -> httpx.Response:
    async with client(plat, host) as http:
        return await http.get(path)


async def until(
    plat: Platform, host: str, predicate: Callable[[httpx.Response], bool], within: float = 20
) -> httpx.Response:
    """GET / on `host` through the ingress until predicate(response) holds."""
    deadline = time.monotonic() + within
    last = "no answer"
    async with client(plat, host) as http:
        while time.monotonic() < deadline:
            try:
                response = await http.get("/")
                if predicate(response):
                    return response
                last = f"{response.status_code} {response.text[:200]!r}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.1)
    pytest.fail(f"{host}: condition not met within {within} s (last: {last})")


def ok(response: httpx.Response) -> bool:
    return response.status_code == 200


async def live_number(user: User, project: str) -> int:
    return (await user.api(LIVE, p=project))["project"]["liveApplication"]["number"]


# ------------------------------------------------------------------------------------ routing


async def test_deployed_app_answers_on_its_default_domain(plat: Platform, python_app: str):
    host = f"{python_app}.localhost"
    response = await until(plat, host, ok)
    body = response.json()
    assert (body["app"], body["env"]["PAASTECH_APP"]) == ("python", python_app)
    # As a browser sends it: with the port, in any case.
    response = await get(plat, f"{host.upper()}:{plat.ingress_port}")
    assert response.status_code == 200 and response.json()["app"] == "python"


async def test_unknown_host_is_404(plat: Platform, python_app: str):
    for host in (f"nope-{python_app}.localhost", "unknown.example.test", "127.0.0.1"):
        response = await get(plat, host)
        assert response.status_code == 404, host
        assert response.headers["content-type"].startswith("text/plain")
        assert "No app at" in response.text


def container_ids(project: str) -> set[str]:
    return {docker_inspect(r["name"])["Id"] for r in docker_containers(project)}


async def test_custom_domain_answers_after_add_and_stops_after_remove(
    plat: Platform, user: User, python_app: str, dns: DnsZone
):
    """Issue 19: a domain change is routing only: no release, the same containers keep
    serving (ids unchanged), the new hostname routes through the ingress."""
    default, custom = f"{python_app}.localhost", f"www.{python_app}-shop.example.test"
    assert (await get(plat, custom)).status_code == 404
    before = await live_number(user, python_app)
    ids = container_ids(python_app)
    assert ids

    await user.api(
        "mutation($p: String!, $h: String!) { addDomain(project: $p, hostname: $h) { name } }",
        p=python_app,
        h=custom,
    )
    # Not routed until its control is proven (issue 12): the TXT record, then verifyDomain.
    assert (await get(plat, custom)).status_code == 404
    assert await live_number(user, python_app) == before
    record = f"_paastech-challenge.{custom}"
    found = (await user.api(DOMAINS, p=python_app))["project"]["domains"]
    dns.set(record, next(d["verification"]["value"] for d in found if d["hostname"] == custom))
    await user.api(
        "mutation($p: String!, $h: String!) { verifyDomain(project: $p, hostname: $h) { name } }",
        p=python_app,
        h=custom,
    )
    response = await until(plat, custom, ok)
    assert response.json()["env"]["PAASTECH_RELEASE"] == str(before)
    assert ok(await get(plat, default))
    assert await live_number(user, python_app) == before
    assert container_ids(python_app) == ids
    state = (await user.api(LIVE, p=python_app))["project"]
    assert [(d["hostname"], d["default"]) for d in state["domains"]] == [
        (default, True),
        (custom, False),
    ]

    await user.api(
        "mutation($p: String!, $h: String!) { removeDomain(project: $p, hostname: $h) { name } }",
        p=python_app,
        h=custom,
    )
    await until(plat, custom, lambda r: r.status_code == 404)
    # The default domain kept answering from the same release and the same containers.
    response = await get(plat, default)
    assert ok(response) and response.json()["env"]["PAASTECH_RELEASE"] == str(before)
    assert await live_number(user, python_app) == before
    assert container_ids(python_app) == ids


STATE = """query($p: String!) { project(name: $p) {
  applications(first: 1) { number }
  settings { memoryMb replicas { processType replicas } } } }"""
SET_SAME = """mutation($p: String!) {
  setEnvVars(project: $p, vars: [{key: "SAME", value: "1"}]) { application { number } } }"""


def running_ids(project: str) -> set[str]:
    return {
        docker_inspect(r["name"])["Id"]
        for r in docker_containers(project)
        if r["state"] == "running"
    }


async def latest_number(user: User, project: str) -> int:
    return (await user.api(STATE, p=project))["project"]["applications"][0]["number"]


async def test_config_changes_that_change_nothing_make_no_release(
    plat: Platform, user: User, python_app: str
):
    """Issue 19: scale to the current count, resources at their current limits, an env var set
    to its current value: no release, no restarted container. A real change still releases."""
    state = (await user.api(STATE, p=python_app))["project"]
    before = state["applications"][0]["number"]
    web = {r["processType"]: r["replicas"] for r in state["settings"]["replicas"]}["web"]
    ids = running_ids(python_app)
    scaled = await user.api(
        'mutation($p: String!, $n: Int!) { scale(project: $p, processType: "web", replicas: $n)'
        " { project { name } application { number } } }",
        p=python_app,
        n=web,
    )
    assert scaled["scale"] == {"project": {"name": python_app}, "application": None}
    limited = await user.api(
        "mutation($p: String!, $m: Int!) { setResources(project: $p, memoryMb: $m) "
        "{ application { number } } }",
        p=python_app,
        m=state["settings"]["memoryMb"],
    )
    assert limited["setResources"]["application"] is None
    assert await latest_number(user, python_app) == before
    assert running_ids(python_app) == ids

    made = await user.api(SET_SAME, p=python_app)  # a new variable: a real change, one release
    assert made["setEnvVars"]["application"] == {"number": before + 1}  # the release it made
    await user.wait_status(python_app, before + 1, {"running"})
    ids = running_ids(python_app)
    same = await user.api(SET_SAME, p=python_app)  # the same value again: nothing changes
    assert same["setEnvVars"]["application"] is None
    assert await latest_number(user, python_app) == before + 1
    assert running_ids(python_app) == ids


async def test_three_replicas_all_receive_traffic(plat: Platform, user: User, python_app: str):
    before = await live_number(user, python_app)
    await user.api(
        'mutation($p: String!) { scale(project: $p, processType: "web", replicas: 3) { project { name } } }',
        p=python_app,
    )
    await user.wait_status(python_app, before + 1, {"running"})
    rows = [r for r in docker_containers(python_app) if r["state"] == "running"]
    expected = {docker_inspect(r["name"])["Config"]["Hostname"] for r in rows}
    assert len(expected) == 3, rows

    seen: Counter[str] = Counter()
    deadline = time.monotonic() + 20
    async with client(plat, f"{python_app}.localhost") as http:
        while time.monotonic() < deadline and not (
            set(seen) == expected and min(seen.values()) >= 5
        ):
            response = await http.get("/")
            if ok(response):
                seen[response.json()["hostname"]] += 1
    assert set(seen) == expected, seen
    assert min(seen.values()) >= 5, seen


# ------------------------------------------------------------------------------------ streams


async def test_websocket_echo_app_through_the_ingress(plat: Platform, user: User):
    project = await deployed(plat, user, "websocket")
    host = f"{project}.localhost"
    await until(plat, host, ok)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"http://127.0.0.1:{plat.ingress_port}/ws", headers={"Host": host}
        ) as ws,
    ):
        for i in range(3):
            await ws.send_str(f"hello {i}")
            message = await ws.receive(timeout=10)
            assert (message.type, message.data) == (aiohttp.WSMsgType.TEXT, f"hello {i}")
        payload = os.urandom(200_000)
        await ws.send_bytes(payload)
        message = await ws.receive(timeout=10)
        assert (message.type, message.data) == (aiohttp.WSMsgType.BINARY, payload)
        await ws.close()
    assert ws.closed


async def test_20mb_upload_streams_through(plat: Platform, user: User):
    project = await deployed(plat, user, "dockerfile")
    host = f"{project}.localhost"
    await until(plat, host, ok)
    size = 20 * MB

    async def body():
        chunk = os.urandom(MB)
        for _ in range(20):
            yield chunk

    async with client(plat, host, timeout=60) as http:
        response = await http.post("/echo", content=body(), headers={"Content-Length": str(size)})
        assert response.status_code == 200, response.text
        assert response.json() == {"app": "dockerfile", "received": size}


# ------------------------------------------------------------------------------------ crash


async def test_crashed_app_answers_502_or_503_then_recovers(plat: Platform, user: User):
    # The app takes 3 s to listen after each start, so the gap after a crash is observable.
    project = await deployed(
        plat, user, "python", {"Procfile": "web: sleep 3 && exec python3 app.py\n"}
    )
    host = f"{project}.localhost"
    first = (await until(plat, host, ok)).json()["hostname"]
    (container,) = [r["name"] for r in docker_containers(project)]

    # A real crash: every process of the app gets SIGKILL from inside (not `docker kill`, which
    # Docker counts as a manual stop and does not restart); tini exits 137 and the engine's
    # on-failure policy starts the container again.
    subprocess.run(["docker", "exec", container, "sh", "-c", "kill -9 -1"], check=False)

    statuses: list[int] = []
    async with client(plat, host, timeout=5) as http:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            response = await http.get("/")  # a hang raises ReadTimeout (client timeout 5 s)
            statuses.append(response.status_code)
            if response.status_code in (502, 503):
                break
            await asyncio.sleep(0.05)
    assert statuses[-1] in (502, 503), statuses
    down = await get(plat, host)
    assert down.status_code in (502, 503)
    assert host in down.text and len(down.text) < 200

    response = await until(plat, host, ok, within=30)
    assert response.json()["hostname"] == first  # the same container, restarted by Docker
    state = docker_inspect(container)
    assert state["RestartCount"] >= 1
    assert state["State"]["Running"]
