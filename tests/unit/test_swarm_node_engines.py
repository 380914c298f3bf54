"""The Swarm nodes' own engines, found by node id (backend/pomegranate/swarm_node_engines.py),
against fake engines; the real cluster's cases are in tests/integration/swarm_addon_cases.py."""

from __future__ import annotations

import pytest
from aiohttp import web

from backend.pomegranate.swarm_node_engines import NodeEngines, NodeUnreachable
from backend.settings import Settings
from tests.support.fake_engine import API, serving


def engine_app(node: dict[str, str]) -> web.Application:
    """An engine that says it is node ``node["id"]`` (changeable: a node that re-joined)."""

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"ApiVersion": API.lstrip("v")})

    async def info(request: web.Request) -> web.Response:
        return web.json_response({"Swarm": {"NodeID": node["id"]}})

    async def inspect_node(request: web.Request) -> web.Response:
        node_id = request.match_info["id"]
        return web.json_response(
            {
                "ID": node_id,
                "Description": {"Hostname": f"host-{node_id}"},
                "Status": {"Addr": "10.0.0.9", "State": "down"},
            }
        )

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get(f"/{API}/version", version)
    app.router.add_get(f"/{API}/info", info)
    app.router.add_get(f"/{API}/nodes/{{id}}", inspect_node)
    return app


def url_of(docker) -> str:
    return str(docker.docker_host)


async def test_each_node_s_engine_is_found_by_the_id_it_reports():
    worker_node = {"id": "worker1"}
    async with (
        serving(engine_app({"id": "manager1"})) as manager,
        serving(engine_app(worker_node)) as worker,
    ):
        engines = NodeEngines(manager, [url_of(worker)])
        try:
            assert await engines.engine("manager1") is manager
            found = await engines.engine("worker1")
            assert url_of(found) == url_of(worker)
            assert await engines.engine("worker1") is found  # known: asked again, not searched

            # A node no listed engine is: the error names it (as the manager describes it) and
            # the setting.
            with pytest.raises(NodeUnreachable) as unknown:
                await engines.engine("other1")
            message = str(unknown.value)
            assert "node other1 (host-other1, 10.0.0.9, down)" in message
            assert "no engine in swarm_node_docker_urls is this node" in message
            assert "PAASTECH_SWARM_NODE_DOCKER_URLS" in message

            # The URL now answers as another node (it re-joined): no longer this one.
            worker_node["id"] = "worker2"
            with pytest.raises(NodeUnreachable, match="node worker1 "):
                await engines.engine("worker1")
            assert url_of(await engines.engine("worker2")) == url_of(worker)
        finally:
            await engines.close()


async def test_an_engine_that_does_not_answer_is_named_in_the_error():
    async with serving(engine_app({"id": "manager1"})) as manager:
        dead = "http://127.0.0.1:9"  # discard port: nothing listens
        engines = NodeEngines(manager, [dead])
        try:
            with pytest.raises(NodeUnreachable) as refused:
                await engines.engine("worker1")
            assert f"not answering: {dead}" in str(refused.value)
        finally:
            await engines.close()


def test_the_former_stats_setting_still_lists_node_engines():
    settings = Settings(
        swarm_node_docker_urls=["tcp://a:2376"],
        swarm_stats_docker_urls=["tcp://a:2376", "tcp://b:2376"],
    )
    assert settings.swarm_node_engine_urls == ["tcp://a:2376", "tcp://b:2376"]
    assert Settings().swarm_node_engine_urls == []


def test_the_addon_of_a_client_tool_crosses_the_edge() -> None:
    """pg:psql / redis:cli name their add-on to Pomegranate (RunStart.addon, issue 16): on a
    Swarm the tool runs on the add-on's node; a plain one-off names none."""
    from backend.rpc import pomegranate_client as edge
    from backend.rpc import pomegranate_types as pt

    spec = pt.ReleaseSpec(
        project="blog",
        application=1,
        image="paastech/postgres:15",
        processes=(),
        env={},
        port=5000,
        hostnames=(),
        memory_mb=128,
        cpu=0.5,
        health_path=None,
        health_timeout=30.0,
    )
    plain = pt.RunStart(spec, ["ls"], tty=False, detach=False, timeout_seconds=60)
    assert edge._run_start(plain).addon == ""
    tool = pt.RunStart(spec, ["psql"], False, False, 60, addon="postgresql-blog-1")
    assert edge._run_start(tool).addon == "postgresql-blog-1"
