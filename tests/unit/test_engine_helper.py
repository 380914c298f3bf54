"""The read layer's engine calls (backend/engine/engine.py, events.py, inspect.py) against a
small fake engine API on 127.0.0.1: the request they make, the events they yield, and engine
errors raised as aiodocker's DockerError."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiodocker
import pytest
from aiodocker.exceptions import DockerError
from aiohttp import web

from backend.engine.events import container_events
from backend.engine.inspect import inspect_container, inspect_volume, volume_sizes
from tests.support.fake_engine import API, serving


class FakeEngine:
    def __init__(self) -> None:
        self.seen_filters: list[dict[str, list[str]]] = []
        self.df_status = 200

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(f"/{API}/events", self.events)
        app.router.add_get(f"/{API}/system/df", self.df)
        app.router.add_get(f"/{API}/containers/{{name}}/json", self.container)
        app.router.add_get(f"/{API}/volumes/{{name}}", self.volume)
        return app

    async def events(self, request: web.Request) -> web.StreamResponse:
        self.seen_filters.append(json.loads(request.query["filters"]))
        response = web.StreamResponse()
        await response.prepare(request)
        lines = [
            {"Type": "container", "Action": "start", "Actor": {"ID": "c1", "Attributes": {}}},
            "not json",
            {"Type": "container", "Action": "health_status: healthy", "Actor": {"ID": "c1"}},
            {"Type": "container", "Action": "die", "Actor": {"Attributes": {}}},  # no id
        ]
        for line in lines:
            text = line if isinstance(line, str) else json.dumps(line)
            await response.write(text.encode() + b"\n")
        await response.write_eof()
        return response

    async def df(self, _request: web.Request) -> web.Response:
        if self.df_status != 200:
            return web.json_response({"message": "engine is busy"}, status=self.df_status)
        return web.json_response(
            {"Volumes": [{"Name": "v1", "UsageData": {"Size": 42}}, {"Name": "v2"}]}
        )

    async def container(self, request: web.Request) -> web.Response:
        if request.match_info["name"] != "c1":
            return web.json_response({"message": "No such container"}, status=404)
        return web.json_response({"Id": "c1", "Name": "/p.shop.1.web.1"})

    async def volume(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "forbidden":
            return web.json_response({"message": "permission denied"}, status=403)
        # The engine also answers a prefix: only an exact name is the volume.
        return web.json_response({"Name": "real-" + name if name == "prefix" else name})


@pytest.fixture
async def engine() -> AsyncIterator[tuple[FakeEngine, aiodocker.Docker]]:
    fake = FakeEngine()
    async with serving(fake.app()) as docker:
        yield fake, docker


async def test_container_events(engine: tuple[FakeEngine, aiodocker.Docker]) -> None:
    fake, docker = engine
    async with container_events(docker, ["paastech.managed=true"], ["start", "die"]) as stream:
        # The engine has accepted the stream before the first event is read.
        assert fake.seen_filters == [
            {"type": ["container"], "label": ["paastech.managed=true"], "event": ["start", "die"]}
        ]
        events = [event async for event in stream]
    assert [(e.kind, e.detail, e.container_id) for e in events] == [
        ("start", None, "c1"),
        ("health_status", "healthy", "c1"),
    ]


async def test_inspect_and_sizes(engine: tuple[FakeEngine, aiodocker.Docker]) -> None:
    fake, docker = engine
    data = await inspect_container(docker, "c1")
    assert data is not None and data["Name"] == "/p.shop.1.web.1"
    assert await inspect_container(docker, "missing") is None
    assert await inspect_volume(docker, "data") == {"Name": "data"}
    assert await inspect_volume(docker, "prefix") is None
    with pytest.raises(DockerError) as caught:
        await inspect_volume(docker, "forbidden")
    assert caught.value.status == 403
    assert await volume_sizes(docker) == {"v1": 42, "v2": -1}
    fake.df_status = 500
    with pytest.raises(DockerError) as caught:
        await volume_sizes(docker)
    assert caught.value.status == 500 and caught.value.message == "engine is busy"


async def test_an_unreachable_engine_is_a_docker_error() -> None:
    docker = aiodocker.Docker(url="http://127.0.0.1:9", api_version=API)
    try:
        with pytest.raises(DockerError) as caught:
            async with container_events(docker, [], ["start"]):
                pass
        assert caught.value.status == 900
    finally:
        await docker.close()
