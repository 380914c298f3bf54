"""Issue 13: one Docker access layer and protobuf only at the RPC edge.

* backend/engine/engine.py's Swarm calls (update_service, task_logs) against a fake engine API:
  the request they make and engine errors raised as aiodocker's DockerError;
* networks.py's subnet choice and ownership check over a fake engine (a bad input creates
  nothing);
* SampleStats through a real gRPC server: the client returns dataclasses;
* the source rules: no private aiodocker calls, no module reaching into another's private names
  in the Docker layer, no grpc or generated code in backend/services.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest
from aiodocker.exceptions import DockerError
from aiohttp import web

from backend import labels as L
from backend.engine.engine import task_logs, update_service
from backend.metrics.containers import ContainerSample
from backend.pomegranate import networks as networks_module
from backend.pomegranate.networks import NetworkError, ProjectNetworks, create_network
from backend.pomegranate.server import create_server
from backend.pomegranate.service import PomegranateService
from backend.rpc import pomegranate_types as pt
from backend.rpc.pomegranate_client import PomegranateClient
from backend.settings import Settings, get_settings
from tests.support.fake_engine import API, serving

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ engine.py: Swarm calls


class FakeManager:
    def __init__(self) -> None:
        self.updates: list[tuple[str, dict[str, str], dict[str, Any], str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(f"/{API}/services/{{id}}/update", self.update)
        app.router.add_get(f"/{API}/tasks/{{id}}/logs", self.logs)
        return app

    async def update(self, request: web.Request) -> web.Response:
        if request.match_info["id"] == "stale":
            return web.json_response({"message": "update out of sequence"}, status=500)
        self.updates.append(
            (
                request.match_info["id"],
                dict(request.query),
                await request.json(),
                request.headers.get("X-Registry-Auth", ""),
            )
        )
        return web.json_response({})

    async def logs(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["id"] != "t1":
            return web.json_response({"message": "task t2 not found"}, status=404)
        response = web.StreamResponse()
        await response.prepare(request)
        for stream, text in ((1, b"out\n"), (2, b"err\n")):
            await response.write(bytes([stream, 0, 0, 0]) + len(text).to_bytes(4, "big") + text)
        await response.write_eof()
        return response


@pytest.fixture
async def manager() -> AsyncIterator[tuple[FakeManager, aiodocker.Docker]]:
    fake = FakeManager()
    async with serving(fake.app()) as docker:
        yield fake, docker


async def test_update_service_sends_the_whole_spec_at_its_version(manager) -> None:
    fake, docker = manager
    spec = {"Name": "i_shop_web", "Labels": {"a": "b"}}
    await update_service(docker, "svc1", 7, spec, {"X-Registry-Auth": "token"})
    assert fake.updates == [("svc1", {"version": "7"}, spec, "token")]


async def test_an_engine_error_is_a_docker_error_with_its_message(manager) -> None:
    fake, docker = manager
    with pytest.raises(DockerError) as caught:
        await update_service(docker, "stale", 1, {}, {})
    assert caught.value.status == 500 and "out of sequence" in caught.value.message
    assert fake.updates == []
    with pytest.raises(DockerError) as missing:
        async with task_logs(docker, "t2", follow=False, tail=5):
            pass
    assert missing.value.status == 404


async def test_task_logs_is_the_multiplexed_stream(manager) -> None:
    _, docker = manager
    async with task_logs(docker, "t1", follow=False, tail=None) as stream:
        frames = []
        while header := await stream.read(8):
            frames.append((header[0], await stream.readexactly(int.from_bytes(header[4:], "big"))))
    assert frames == [(1, b"out\n"), (2, b"err\n")]


async def test_an_unreachable_engine_is_a_docker_error() -> None:
    docker = aiodocker.Docker(url="http://127.0.0.1:9", api_version=API)
    try:
        with pytest.raises(DockerError) as caught:
            await update_service(docker, "svc1", 1, {}, {})
        assert caught.value.status == 900
    finally:
        await docker.close()


# ------------------------------------------------------------------ networks.py


class FakeNetworks:
    """The engine's network API: existing networks, and creations refused as told."""

    def __init__(self, existing: list[dict[str, Any]] | None = None) -> None:
        self.existing = existing or []
        self.created: list[dict[str, Any]] = []
        self.refuse: list[DockerError] = []

    async def list(self) -> list[dict[str, Any]]:
        return self.existing + self.created

    async def create(self, config: dict[str, Any]) -> None:
        if self.refuse:
            raise self.refuse.pop(0)
        self.created.append(config)

    async def get(self, name: str) -> Any:
        for data in self.existing + self.created:
            if data["Name"] == name:
                return _Shown(data)
        raise DockerError(404, f"network {name} not found")


class _Shown:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    async def show(self) -> dict[str, Any]:
        return self.data


class FakeDocker:
    def __init__(self, networks: FakeNetworks) -> None:
        self.networks = networks


def _subnet(config: dict[str, Any]) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(config["IPAM"]["Config"][0]["Subnet"])


# The host firewall is tested below with a stand-in script; these never touch iptables.
SMALL_POOL = Settings(
    project_network_pool="10.99.0.0/23", project_network_prefix=24, project_network_firewall=False
)


async def test_a_network_gets_a_free_subnet_of_the_pool() -> None:
    taken = {"Name": "other", "IPAM": {"Config": [{"Subnet": "10.99.0.0/24"}]}}
    networks = FakeNetworks([taken])
    await create_network(FakeDocker(networks), SMALL_POOL, "n1", {"k": "v"}, internal=True)  # type: ignore[arg-type]
    (made,) = networks.created
    assert _subnet(made) == ipaddress.IPv4Network("10.99.1.0/24")
    assert made["Labels"] == {"k": "v"} and made["Internal"] is True


async def test_an_overlapping_subnet_moves_on_and_a_full_pool_is_refused() -> None:
    networks = FakeNetworks()
    networks.refuse = [DockerError(400, "Pool overlaps with other one")]
    await create_network(FakeDocker(networks), SMALL_POOL, "n1", {})  # type: ignore[arg-type]
    assert len(networks.created) == 1
    # Both /24s of the pool now in use: nothing is created.
    other = FakeNetworks(
        [
            {"Name": "a", "IPAM": {"Config": [{"Subnet": "10.99.0.0/24"}]}},
            {"Name": "b", "IPAM": {"Config": [{"Subnet": "10.99.1.0/24"}]}},
        ]
    )
    with pytest.raises(NetworkError, match="no free /24"):
        await create_network(FakeDocker(other), SMALL_POOL, "n2", {})  # type: ignore[arg-type]
    assert other.created == []


async def test_a_pool_that_cannot_hold_the_prefix_is_refused() -> None:
    networks = FakeNetworks()
    bad = Settings(
        project_network_pool="10.99.0.0/24",
        project_network_prefix=16,
        project_network_firewall=False,
    )
    with pytest.raises(NetworkError, match="must be IPv4"):
        await create_network(FakeDocker(networks), bad, "n1", {})  # type: ignore[arg-type]
    assert networks.created == []


async def test_a_project_network_is_made_once_and_a_foreign_one_refused() -> None:
    networks = FakeNetworks()
    docker = FakeDocker(networks)
    projects = ProjectNetworks(SMALL_POOL, lambda: docker)  # type: ignore[arg-type, return-value]
    name = await projects.ensure("shop")
    assert name == L.network_name("shop", instance=SMALL_POOL.instance)
    assert await projects.ensure("shop") == name and len(networks.created) == 1
    assert networks.created[0]["Labels"] == projects.labels("shop")
    # A same-named network carrying someone else's labels is never taken over.
    squatted = L.network_name("blog", instance=SMALL_POOL.instance)
    networks.existing.append({"Name": squatted, "Labels": projects.labels("other")})
    with pytest.raises(NetworkError, match="not project blog's"):
        await projects.ensure("blog")
    assert len(networks.created) == 1


def _firewall_script(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "firewall.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setattr(networks_module, "FIREWALL_SCRIPT", script)
    monkeypatch.setattr(networks_module, "_firewalled", set())
    return script


async def test_the_pools_firewall_is_installed_once_before_a_network_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    _firewall_script(tmp_path, f'echo "$1 $PAASTECH_PROJECT_NETWORK_POOL" >> {calls}', monkeypatch)
    settings = SMALL_POOL.replace(project_network_firewall=True)
    networks = FakeNetworks()
    docker = FakeDocker(networks)
    projects = ProjectNetworks(settings, lambda: docker)  # type: ignore[arg-type, return-value]
    await projects.ensure("shop")
    await projects.ensure("shop")
    await create_network(docker, settings, "addon", {}, internal=True)  # type: ignore[arg-type]
    assert calls.read_text() == "install 10.99.0.0/23\n"
    assert len(networks.created) == 2


async def test_a_firewall_that_cannot_be_installed_stops_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _firewall_script(tmp_path, 'echo "iptables: Permission denied"; exit 4', monkeypatch)
    settings = SMALL_POOL.replace(project_network_firewall=True)
    networks = FakeNetworks()
    docker = FakeDocker(networks)
    projects = ProjectNetworks(settings, lambda: docker)  # type: ignore[arg-type, return-value]
    with pytest.raises(NetworkError, match="firewall could not be set up: iptables: Permission"):
        await projects.ensure("shop")
    with pytest.raises(NetworkError, match="firewall could not be set up"):
        await create_network(docker, settings, "addon", {})  # type: ignore[arg-type]
    assert networks.created == []


# ------------------------------------------------------------------ the gRPC edge


class FakeSampler:
    async def sample(self) -> list[ContainerSample]:
        return [
            ContainerSample(
                project="shop",
                application=3,
                process="web",
                replica=1,
                container_id="c1",
                cpu_cores=0.5,
                memory_bytes=10,
                memory_limit_bytes=100,
                net_rx_bytes_per_second=1.5,
                net_tx_bytes_per_second=2.5,
                restarts=1,
                read_at="2026-01-01T00:00:00Z",
            )
        ]


async def test_sample_stats_comes_back_as_dataclasses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAASTECH_INTERNAL_KEY", "docker-layer-test-" + "k" * 40)
    get_settings.cache_clear()

    class Runtime:
        docker = object()

    service = PomegranateService(Runtime(), get_settings())  # type: ignore[arg-type]
    service._sampler = FakeSampler()  # type: ignore[assignment]
    server, port = create_server(service, "127.0.0.1:0")
    await server.start()
    client = PomegranateClient(target=f"127.0.0.1:{port}")
    try:
        assert await client.sample_stats() == [
            pt.ContainerStats(
                project="shop",
                process="web",
                cpu_cores=0.5,
                memory_bytes=10,
                memory_limit_bytes=100,
                net_rx_bytes_per_second=1.5,
                net_tx_bytes_per_second=2.5,
                restarts=1,
            )
        ]
    finally:
        await client.close()
        await server.stop(None)
        get_settings.cache_clear()


# ------------------------------------------------------------------ source rules


def _sources(*roots: str) -> list[Path]:
    return [p for root in roots for p in (ROOT / root).rglob("*.py") if "_pb2" not in p.name]


def test_no_private_aiodocker_calls() -> None:
    private = re.compile(r"\._(query|query_json|query_chunked_post|do_query)\(")
    found = [
        str(p.relative_to(ROOT))
        for p in _sources("backend", "gitd", "cli", "tests")
        if private.search(p.read_text())
    ]
    assert found == []


def test_the_docker_layer_uses_no_other_modules_private_names() -> None:
    # `obj._name` where obj is not self/cls; engine.half_close reads aiodocker's Stream._resp,
    # the one documented exception (aiodocker has no half-close).
    reach = re.compile(r"\b(?!self\b|cls\b)[a-z_][a-z0-9_]*\._[a-z]\w*")
    found = []
    for path in _sources("backend/pomegranate", "backend/engine", "backend/ingress"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for match in reach.findall(code):
                if match != "stream._resp":
                    found.append(f"{path.relative_to(ROOT)}:{number}: {match}")
    assert found == []


def test_services_never_import_grpc_or_generated_code() -> None:
    bad = re.compile(r"^\s*(import grpc|from grpc|from backend\.rpc import \w+_pb2)", re.M)
    found = [
        str(p.relative_to(ROOT)) for p in _sources("backend/services") if bad.search(p.read_text())
    ]
    assert found == []


def test_removed_proto_fields_are_reserved() -> None:
    from backend.rpc import platform_pb2, pomegranate_pb2

    removed = {
        (pomegranate_pb2, "ContainerStats"): ("application", "replica", "container_id", "read_at"),
        (platform_pb2, "RunHeader"): ("detach",),
        (platform_pb2, "RepoReply"): ("code",),
        (platform_pb2, "Refusal"): ("code",),
        (platform_pb2, "Deployed"): ("application",),
    }
    for (module, message), fields in removed.items():
        descriptor = module.DESCRIPTOR.message_types_by_name[message]
        assert not set(fields) & set(descriptor.fields_by_name), message
        proto = (
            ROOT / "backend/rpc" / f"{module.__name__.rsplit('.', 1)[1][:-4]}.proto"
        ).read_text()
        body = proto.split(f"message {message} {{", 1)[1].split("\n}", 1)[0]
        assert "reserved " + ", ".join(f'"{f}"' for f in fields) + ";" in body, message
