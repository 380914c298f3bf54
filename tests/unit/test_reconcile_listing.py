"""Issue 17: the reconcile cycle reads the engine with ONE container listing, no inspect per
container, and decides exactly as it did from the inspects.

A fake engine (tests/support/fake_engine.py) holds each container once and answers both the
listing (`GET /containers/json`, label filters applied as the engine does) and the inspect
(`GET /containers/{id}/json`) from it, in the engine's two formats; it counts every call.
tests/integration/test_docker_runtime.py compares the two on a real engine.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiodocker.exceptions import DockerError
from aiohttp import web

from backend import labels as L
from backend.pomegranate.docker_runtime import DockerRuntime
from backend.pomegranate.reconciler import DesiredProject, decide, reconcile
from backend.pomegranate.release import Process, ReleasePlan
from backend.pomegranate.runtime import ContainerInfo
from backend.settings import Settings
from tests.support.fake_engine import API, serving

SETTINGS = Settings(secret_key="unit")
INSTANCE = SETTINGS.instance
# What the listing carries; exit_code, oom_killed, started_at and restart_count need an inspect.
LISTED_FIELDS = ("id", "name", "ownership", "state", "running", "host_port", "image", "labels")


@dataclass
class Box:
    """One container as the engine knows it."""

    id: str
    name: str
    labels: dict[str, str]
    state: str = "running"
    networks: list[str] = field(default_factory=list)
    host_port: int | None = None
    exit_code: int = 0
    image: str = "127.0.0.1:5000/paastech/app@sha256:" + "ab" * 32

    def listed(self) -> dict[str, Any]:
        ports: list[dict[str, Any]] = [{"PrivatePort": 5000, "Type": "tcp"}]
        if self.host_port is not None:
            ports = [
                {
                    "IP": "127.0.0.1",
                    "PrivatePort": 5000,
                    "PublicPort": self.host_port,
                    "Type": "tcp",
                }
            ]
        return {
            "Id": self.id,
            "Names": [f"/{self.name}"],
            "Image": self.image,
            "ImageID": "sha256:" + "cd" * 32,
            "Command": "/bin/sh -c app",
            "Created": 1_700_000_000,
            "State": self.state,
            "Status": "Up 3 minutes" if self.state == "running" else "Exited (1) 1 minute ago",
            "Ports": ports,
            "Labels": self.labels,
            "HostConfig": {"NetworkMode": self.networks[0] if self.networks else "none"},
            "NetworkSettings": {"Networks": {n: {"NetworkID": n * 2} for n in self.networks}},
            "Mounts": [],
        }

    def inspected(self) -> dict[str, Any]:
        running = self.state in ("running", "paused", "restarting")
        ports: dict[str, Any] = {"5000/tcp": None}
        if self.host_port is not None:
            ports = {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(self.host_port)}]}
        return {
            "Id": self.id,
            "Name": f"/{self.name}",
            "RestartCount": 2,
            "State": {
                "Status": self.state,
                "Running": running,
                "Paused": self.state == "paused",
                "Restarting": self.state == "restarting",
                "OOMKilled": False,
                "ExitCode": self.exit_code,
                "StartedAt": "2026-12-03T17:00:00.123456789Z",
            },
            "Config": {"Image": self.image, "Labels": self.labels},
            "NetworkSettings": {
                "Ports": ports,
                "Networks": {n: {"NetworkID": n * 2} for n in self.networks},
            },
        }


class FakeEngine:
    def __init__(self, boxes: list[Box]) -> None:
        self.boxes = {b.id: b for b in boxes}
        self.calls: Counter[str] = Counter()
        self.filters: list[list[str]] = []
        self.removed: list[str] = []
        self.stopped: list[str] = []
        self.fail_listing = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(f"/{API}/containers/json", self.listing)
        app.router.add_get(f"/{API}/containers/{{id}}/json", self.inspect)
        app.router.add_post(f"/{API}/containers/{{id}}/stop", self.stop)
        app.router.add_delete(f"/{API}/containers/{{id}}", self.remove)
        app.router.add_get(f"/{API}/networks/{{name}}", self.network)
        return app

    async def listing(self, request: web.Request) -> web.Response:
        self.calls["list"] += 1
        if self.fail_listing:
            return web.json_response({"message": "engine overloaded"}, status=500)
        assert request.query.get("all") in ("1", "true", "True")
        wanted = json.loads(request.query.get("filters", "{}")).get("label", [])
        self.filters.append(wanted)

        def matches(box: Box) -> bool:
            for want in wanted:
                key, _, value = want.partition("=")
                if key not in box.labels or ("=" in want and box.labels[key] != value):
                    return False
            return True

        return web.json_response([b.listed() for b in self.boxes.values() if matches(b)])

    async def inspect(self, request: web.Request) -> web.Response:
        self.calls["inspect"] += 1
        box = self.boxes.get(request.match_info["id"])
        if box is None:
            return web.json_response({"message": "No such container"}, status=404)
        return web.json_response(box.inspected())

    async def stop(self, request: web.Request) -> web.Response:
        self.calls["stop"] += 1
        self.stopped.append(request.match_info["id"])
        return web.Response(status=204)

    async def remove(self, request: web.Request) -> web.Response:
        self.calls["remove"] += 1
        self.removed.append(request.match_info["id"])
        self.boxes.pop(request.match_info["id"], None)
        return web.Response(status=204)

    async def network(self, request: web.Request) -> web.Response:
        self.calls["network"] += 1
        return web.json_response({"message": "network not found"}, status=404)


def box(
    id: str,
    project: str,
    application: int,
    process: str = "web",
    replica: int = 1,
    *,
    state: str = "running",
    name: str | None = None,
    instance: str = INSTANCE,
    **extra: Any,
) -> Box:
    labels = L.ownership_labels(project, application, process, replica, instance=instance)
    return Box(
        id=id,
        name=name or L.container_name(project, application, process, replica, instance=instance),
        labels=labels,
        state=state,
        networks=[L.network_name(project, instance=instance)],
        **extra,
    )


def plan(project: str, application: int, *processes: Process) -> ReleasePlan:
    return ReleasePlan(
        project=project,
        application=application,
        image="img",
        processes=[Process("web", None, 1), *processes],
    )


def boxes() -> list[Box]:
    """Every case decide() tells apart, in every engine state the listing reports."""
    return [
        box("a1", "blog", 3, host_port=32771),  # live: adopt
        box("a2", "blog", 3, "worker", 1, state="restarting", exit_code=1),  # live, restarting
        box("a3", "shop", 2, state="exited", exit_code=137),  # live but dead: re-create
        box("a4", "shop", 1, state="exited", exit_code=0),  # an old release: remove
        box("a5", "gone", 1, host_port=32772),  # project deleted: remove
        box("a6", "blog", 4, state="created"),  # in flight: leave
        box("a7", "blog", 3, replica=2, state="paused"),  # beyond the scale: remove
        # Claims to be shop's live replica under another name: forged, removed.
        box("a8", "shop", 2, replica=1, name="shop-impostor", host_port=32773),
        # Another installation on the same engine: never listed, never touched.
        box("x1", "blog", 3, instance="other"),
    ]


def blog() -> DesiredProject:
    return DesiredProject("blog", plan("blog", 3, Process("worker", "run", 1)), in_flight={4})


def desired() -> list[DesiredProject]:
    return [blog(), DesiredProject("shop", plan("shop", 2))]


def names(*ids: str) -> list[str]:
    """The containers' names, in decide()'s order (by name)."""
    by_id = {b.id: b.name for b in boxes()}
    return sorted(by_id[i] for i in ids)


@pytest.fixture
async def engine() -> AsyncIterator[tuple[FakeEngine, DockerRuntime]]:
    fake = FakeEngine(boxes())
    async with serving(fake.app()) as docker:
        yield fake, DockerRuntime(SETTINGS, docker=docker)


def _listed(info: ContainerInfo) -> dict[str, Any]:
    return {f: getattr(info, f) for f in (*LISTED_FIELDS, "networks")}


async def test_one_listing_call_and_no_inspect(engine) -> None:
    fake, runtime = engine
    listed = await runtime.list_containers(detail=False)
    assert fake.calls == Counter(list=1)
    assert fake.filters == [L.instance_filters(INSTANCE)]
    assert [c.id for c in listed] == sorted(
        (b.id for b in boxes() if b.id != "x1"), key=lambda i: fake.boxes[i].name
    )
    assert [c.name for c in listed] == sorted(c.name for c in listed)

    by_project = await runtime.list_containers("shop", detail=False)
    assert fake.filters[-1] == [*L.instance_filters(INSTANCE), f"{L.PROJECT}=shop"]
    assert {c.id for c in by_project} == {"a3", "a4", "a8"}
    assert fake.calls == Counter(list=2)


async def test_the_listing_says_what_the_inspects_say(engine) -> None:
    fake, runtime = engine
    brief = await runtime.list_containers(detail=False)
    full = await runtime.list_containers()
    assert fake.calls["inspect"] == len(full) == 8
    assert [_listed(c) for c in brief] == [_listed(c) for c in full]
    # What the listing cannot say is not made up: it is left unread.
    assert all(
        (c.exit_code, c.oom_killed, c.started_at, c.restart_count) == (None, False, None, 0)
        for c in brief
    )
    assert {c.id: c.exit_code for c in full if c.exit_code is not None} == {
        "a2": 1,
        "a3": 137,
        "a4": 0,
    }
    states = {c.id: (c.state, c.running, c.host_port) for c in brief}
    assert states["a1"] == ("running", True, 32771)
    assert states["a2"] == ("restarting", False, None)
    assert states["a3"] == ("exited", False, None)
    assert states["a6"] == ("created", False, None)
    assert states["a7"] == ("paused", True, None)


async def test_decisions_from_the_listing_equal_those_from_the_inspects(engine) -> None:
    _, runtime = engine
    brief = decide(desired(), await runtime.list_containers(detail=False), instance=INSTANCE)
    full = decide(desired(), await runtime.list_containers(), instance=INSTANCE)
    decided = {
        kind: [c.name for c in getattr(brief, kind)]
        for kind in ("adopt", "recreate", "migrate", "remove", "leave")
    }
    assert decided == {
        "adopt": names("a1", "a2"),
        "recreate": names("a3"),
        "migrate": [],
        "remove": names("a4", "a5", "a7", "a8"),
        "leave": names("a6"),
    }
    for kind, expected in decided.items():
        assert [c.name for c in getattr(full, kind)] == expected, kind
    assert brief.missing == full.missing == []


async def test_reconcile_lists_once_and_inspects_nothing(engine) -> None:
    fake, runtime = engine
    # shop is busy (a release of it runs here): not touched; gone is an orphan.
    result = await reconcile(runtime, desired(), SETTINGS, skip={"shop"})
    assert fake.calls["list"] == 1
    assert fake.calls["inspect"] == 0
    assert sorted(fake.removed) == ["a5", "a7"]
    assert sorted(fake.stopped) == ["a5", "a7"]
    assert result.adopted == names("a1", "a2")
    assert sorted(result.removed) == names("a5", "a7")
    assert result.started == []
    assert fake.calls["network"] == 1  # the orphan's network is looked up (and is gone)
    assert "x1" in fake.boxes  # the other installation's container


async def test_an_engine_error_on_the_listing_changes_nothing(engine) -> None:
    fake, runtime = engine
    fake.fail_listing = True
    with pytest.raises(DockerError) as info:
        await reconcile(runtime, desired(), SETTINGS)
    assert info.value.status == 500
    assert "engine overloaded" in info.value.message
    assert fake.removed == [] and fake.stopped == []
    assert fake.calls == Counter(list=1)
