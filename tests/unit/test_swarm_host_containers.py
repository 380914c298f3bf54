"""On Swarm, the release phase and one-off commands run as containers on the host engine: stopping
and removing one reaches that engine, never the Swarm's services (each release phase used to
leave its exited container behind)."""

from __future__ import annotations

from aiohttp import web

from backend.pomegranate.swarm_runtime import SwarmRuntime
from backend.settings import Settings
from tests.support.fake_engine import API, serving

TASK = "task0123456789"
HOST = "host0123456789"


def manager_app(calls: list[str]) -> web.Application:
    async def task(request: web.Request) -> web.Response:
        calls.append(f"{request.method} {request.path}")
        if request.match_info["id"] == TASK:
            return web.json_response({"ID": TASK, "ServiceID": "svc1"})
        return web.json_response({"message": "no such task"}, status=404)

    async def other(request: web.Request) -> web.Response:
        calls.append(f"{request.method} {request.path}")
        return web.json_response({"message": "not found"}, status=404)

    app = web.Application()
    app.router.add_get(f"/{API}/tasks/{{id}}", task)
    app.router.add_route("*", "/{tail:.*}", other)
    return app


def host_app(calls: list[str]) -> web.Application:
    async def record(request: web.Request) -> web.Response:
        calls.append(f"{request.method} {request.path}")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    return app


async def run(action: str, container_id: str) -> tuple[list[str], list[str]]:
    manager_calls: list[str] = []
    host_calls: list[str] = []
    settings = Settings(_env_file=None, runtime="swarm", swarm_docker_url="unix:///nowhere.sock")
    async with (
        serving(manager_app(manager_calls)) as manager,
        serving(host_app(host_calls)) as host,
    ):
        runtime = SwarmRuntime(settings, docker=host, manager=manager)
        await getattr(runtime, action)(container_id)
    return manager_calls, host_calls


async def test_a_release_phase_container_is_removed_from_the_host_engine() -> None:
    manager_calls, host_calls = await run("remove", HOST)
    assert host_calls == [f"DELETE /{API}/containers/{HOST}"]
    assert all(not call.startswith("DELETE") for call in manager_calls), manager_calls


async def test_a_one_off_container_is_stopped_on_the_host_engine() -> None:
    _, host_calls = await run("stop", HOST)
    assert host_calls == [f"POST /{API}/containers/{HOST}/stop"]


async def test_a_task_never_reaches_the_host_engine() -> None:
    for action in ("remove", "stop"):
        manager_calls, host_calls = await run(action, TASK)
        assert host_calls == [], action
        assert f"GET /{API}/tasks/{TASK}" in manager_calls
