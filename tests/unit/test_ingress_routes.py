"""The embedded ingress's routing table, from label dicts and Docker inspect data (no Docker)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backend.ingress.routes import (
    RouteTable,
    container_from_inspect,
    normalise_host,
    published_port,
)
from backend.labels import container_labels
from backend.routing import read_table, traefik_config
from backend.settings import Settings


def labels(project: str, hostnames: list[str], *, process: str = "web", replica: int = 1, app=1):
    return container_labels(
        project,
        app,
        process,
        replica,
        hostnames,
        5000,
        network="paastech",
        tls=False,
        certresolver="letsencrypt",
        health_path=None,
    )


def inspect_data(
    cid: str,
    label_set: dict[str, str],
    *,
    host_port: int | None = 32768,
    running: bool = True,
    health: str | None = None,
    host_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    state: dict[str, Any] = {"Running": running, "Restarting": False, "Paused": False}
    if health is not None:
        state["Health"] = {"Status": health}
    ports = {"5000/tcp": [{"HostIp": host_ip, "HostPort": str(host_port)}] if host_port else None}
    return {
        "Id": cid,
        "Name": f"/{cid}",
        "Config": {"Labels": label_set},
        "State": state,
        "NetworkSettings": {"Ports": ports},
    }


def container(cid: str, project: str = "shop", hosts=None, port: int = 32768, **kw):
    replica = kw.pop("replica", 1)
    data = inspect_data(
        cid,
        labels(project, hosts or [f"{project}.localhost"], replica=replica),
        host_port=port,
        **kw,
    )
    c = container_from_inspect(data)
    assert c is not None
    return c


# ----------------------------------------------------------------------------- building


def test_container_from_labels_reads_hosts_and_published_port():
    c = container("c1", hosts=["shop.localhost", "www.shop.example"], port=40001)
    assert c.project == "shop"
    assert c.hostnames == ("shop.localhost", "www.shop.example")
    assert c.container_port == 5000
    assert c.host_port == 40001
    assert c.upstream is not None and c.upstream.base_url == "http://127.0.0.1:40001"
    assert c.health is None and c.running


def test_hostnames_from_a_hand_written_rule_are_normalised():
    label_set = labels("shop", ["shop.localhost"])
    label_set["traefik.http.routers.shop.rule"] = (
        "Host(`WWW.Shop.Example`) || Host(`shop.localhost`)"
    )
    c = container_from_inspect(inspect_data("c1", label_set))
    assert c is not None and c.hostnames == ("www.shop.example", "shop.localhost")


def test_non_web_and_foreign_containers_are_not_routed():
    worker = labels("shop", [], process="worker")
    assert worker["traefik.enable"] == "false"
    assert container_from_inspect(inspect_data("w1", worker)) is None
    assert container_from_inspect(inspect_data("x1", {"traefik.enable": "true"})) is None
    assert container_from_inspect(inspect_data("x2", {})) is None
    # Someone else's container with Traefik labels but without our ownership labels.
    foreign = {
        k: v for k, v in labels("shop", ["shop.localhost"]).items() if k != "paastech.managed"
    }
    assert container_from_inspect(inspect_data("x3", foreign)) is None


def test_published_port_only_for_loopback_reachable_bindings():
    data = inspect_data("c", labels("shop", ["shop.localhost"]), host_port=40002, host_ip="0.0.0.0")
    assert published_port(data, 5000) == 40002
    data = inspect_data("c", labels("shop", ["shop.localhost"]), host_port=40002, host_ip="::1")
    assert published_port(data, 5000) is None
    assert published_port(data, 6000) is None
    stopped = container("c2", running=False)
    assert stopped.host_port is None and not stopped.running


def test_table_maps_every_hostname_to_its_replicas():
    table = RouteTable()
    table.sync(
        [
            container("a1", "shop", ["shop.localhost", "shop.example.test"], 40001, replica=1),
            container("a2", "shop", ["shop.localhost", "shop.example.test"], 40002, replica=2),
            container("b1", "blog", ["blog.localhost"], 40003),
        ],
        trust_running=True,
    )
    hosts = table.hosts()
    assert {u.port for u in hosts["shop.localhost"]} == {40001, 40002}
    assert {u.port for u in hosts["shop.example.test"]} == {40001, 40002}
    assert [u.port for u in hosts["blog.localhost"]] == [40003]


# ----------------------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Shop.LocalHost:8080", "shop.localhost"),
        ("shop.localhost", "shop.localhost"),
        ("shop.localhost.", "shop.localhost"),
        ("  shop.localhost:80 ", "shop.localhost"),
        ("[::1]:8080", "[::1]"),
        ("", ""),
        (None, ""),
    ],
)
def test_host_normalisation(raw, expected):
    assert normalise_host(raw) == expected


def test_lookup_normalises_host_and_unknown_host_is_none():
    table = RouteTable()
    table.sync([container("a1", "shop", ["shop.localhost"], 40001)], trust_running=True)
    route = table.lookup("SHOP.localhost:8080")
    assert route is not None and [u.port for u in route.upstreams] == [40001]
    assert table.lookup("nope.localhost") is None
    assert table.lookup("") is None
    assert table.lookup(None) is None


def test_round_robin_over_replicas():
    table = RouteTable()
    table.sync(
        [container(f"c{i}", "shop", port=40000 + i, replica=i) for i in (1, 2, 3)],
        trust_running=True,
    )
    firsts = []
    for _ in range(6):
        route = table.lookup("shop.localhost")
        assert route is not None
        assert sorted(u.port for u in route.upstreams) == [40001, 40002, 40003]
        firsts.append(route.upstreams[0].port)
    assert firsts == [40001, 40002, 40003, 40001, 40002, 40003]


# ----------------------------------------------------------------------------- changes


def test_kill_removes_replica_at_once_and_start_brings_it_back_after_probe():
    table = RouteTable()
    table.sync(
        [container("old", "shop", port=40001), container("new", "shop", port=40002, replica=2)],
        trust_running=True,
    )
    assert table.mark_stopping("old")
    route = table.lookup("shop.localhost")
    assert route is not None and [u.container_id for u in route.upstreams] == ["new"]

    # A periodic resync while "old" is still running (draining) does not put it back.
    table.sync(
        [container("old", "shop", port=40001), container("new", "shop", port=40002, replica=2)]
    )
    assert [u.container_id for u in table.lookup("shop.localhost").upstreams] == ["new"]

    # Restarted: routed again only after the probe says it answers.
    table.clear_stopping("old")
    table.upsert(container("old", "shop", port=40005))
    assert table.needs_probe("old")
    assert [u.container_id for u in table.lookup("shop.localhost").upstreams] == ["new"]
    table.set_ready("old")
    assert {u.container_id for u in table.lookup("shop.localhost").upstreams} == {"old", "new"}


def test_host_with_all_replicas_stopped_is_known_but_empty_then_unknown_after_destroy():
    table = RouteTable()
    table.sync([container("only", "shop", port=40001)], trust_running=True)
    table.mark_stopping("only")
    route = table.lookup("shop.localhost")
    assert route is not None and route.upstreams == []  # -> 503
    table.upsert(container("only", "shop", running=False))  # died: still exists
    assert table.lookup("shop.localhost").upstreams == []
    assert table.remove("only")
    assert table.lookup("shop.localhost") is None  # -> 404
    assert not table.remove("only")
    assert not table.mark_stopping("unknown")


def test_new_container_is_not_routed_before_ready():
    table = RouteTable()
    table.sync([], trust_running=True)
    table.upsert(container("c1", "shop", port=40001))
    assert table.needs_probe("c1")
    assert table.lookup("shop.localhost").upstreams == []
    table.set_ready("c1")
    assert not table.needs_probe("c1")
    assert [u.port for u in table.lookup("shop.localhost").upstreams] == [40001]
    # Same running process seen again (resync or a second start event): stays ready.
    table.upsert(container("c1", "shop", port=40001))
    assert [u.port for u in table.lookup("shop.localhost").upstreams] == [40001]


def test_health_gating_with_docker_health_check():
    table = RouteTable()
    table.sync(
        [
            container("h1", "shop", port=40001, health="starting"),
            container("h2", "shop", port=40002, health="healthy", replica=2),
        ]
    )
    assert not table.needs_probe("h1")  # Docker's own check decides
    assert [u.container_id for u in table.lookup("shop.localhost").upstreams] == ["h2"]
    assert table.set_health("h1", "healthy")
    assert {u.container_id for u in table.lookup("shop.localhost").upstreams} == {"h1", "h2"}
    assert table.set_health("h2", "unhealthy")
    assert [u.container_id for u in table.lookup("shop.localhost").upstreams] == ["h1"]
    assert not table.set_health("unknown", "healthy")


def test_first_sync_trusts_running_containers_later_ones_probe_new_ones():
    table = RouteTable()
    table.sync([container("a", "shop", port=40001)], trust_running=True)
    assert table.is_routable("a")
    table.sync([container("a", "shop", port=40001), container("b", "shop", port=40002)])
    assert table.is_routable("a")
    assert not table.is_routable("b") and table.needs_probe("b")
    # Gone from the listing: forgotten.
    table.sync([container("b", "shop", port=40002)])
    assert table.get("a") is None
    assert table.lookup("shop.localhost").upstreams == []


def test_container_restarted_while_events_were_missed_comes_back_after_a_probe():
    """A dockerd restart: stop events arrived, the start events did not (the stream was down).
    The resync sees a new StartedAt: the container is no longer stopping, and is probed."""
    from dataclasses import replace

    table = RouteTable()
    before = replace(container("a", "shop", port=40001), started_at="2026-01-01T00:00:00Z")
    table.sync([before], trust_running=True)
    assert table.mark_stopping("a")
    # The same process still running (a stop in progress): stays out of rotation.
    table.sync([before])
    assert table.lookup("shop.localhost").upstreams == []
    after = replace(before, host_port=40005, started_at="2026-01-01T00:05:00Z")
    table.sync([after])
    assert table.lookup("shop.localhost").upstreams == []  # not before its probe
    assert table.needs_probe("a")
    table.set_ready("a")
    assert [u.port for u in table.lookup("shop.localhost").upstreams] == [40005]


# ----------------------------------------------------------------------------- custom domains


def test_custom_domain_routes_as_its_projects_default_hostname(tmp_path):
    """Issue 19: custom domains come from backend/routing.py's table, not from labels."""
    table = RouteTable()
    table.sync([container("a1", "shop", ["shop.localhost"], 40001)], trust_running=True)
    assert table.lookup("www.shop.test") is None
    path = tmp_path / "domains.json"
    path.write_text('{"domains": {"WWW.shop.test": "shop.localhost"}}')
    aliases = read_table(path)
    assert aliases == {"www.shop.test": "shop.localhost"}
    table.set_aliases(aliases)
    route = table.lookup("www.shop.test:80")
    assert route is not None and [u.port for u in route.upstreams] == [40001]
    table.set_aliases({})
    assert table.lookup("www.shop.test") is None
    assert read_table(tmp_path / "missing.json") == {}
    path.write_text("{not json")
    assert read_table(path) is None  # the watcher keeps its last good table


def test_traefik_file_routes_custom_domains_to_the_docker_service():
    settings = Settings(tls=True)
    config = json.loads(traefik_config({"www.a.test": "shop", "b.test": "shop"}, settings))
    assert config["http"]["routers"]["shop-domains"] == {
        "rule": "Host(`b.test`) || Host(`www.a.test`)",
        "entryPoints": ["websecure"],
        "service": "shop@docker",
        "tls": {"certResolver": settings.certresolver},
    }
    assert json.loads(traefik_config({}, settings)) == {}
