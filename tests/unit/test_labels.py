"""The container label format (backend/labels.py), pinned exactly."""

from __future__ import annotations

import pytest

from backend.labels import (
    Ownership,
    container_labels,
    health_path_from_labels,
    ownership_labels,
    parse_labels,
    routes_from_labels,
)


def labels(**overrides):
    args = {
        "project": "shop",
        "application": 3,
        "process_type": "web",
        "replica": 1,
        "hostnames": ["shop.localhost"],
        "port": 5000,
        "network": "paastech",
        "tls": False,
        "certresolver": "letsencrypt",
        "health_path": None,
    }
    args.update(overrides)
    return container_labels(
        args.pop("project"),
        args.pop("application"),
        args.pop("process_type"),
        args.pop("replica"),
        args.pop("hostnames"),
        args.pop("port"),
        **args,
    )


def test_default_domain_only():
    assert labels() == {
        "paastech.managed": "true",
        "paastech.instance": "paastech",
        "paastech.project": "shop",
        "paastech.application": "3",
        "paastech.process": "web",
        "paastech.replica": "1",
        "traefik.enable": "true",
        "traefik.docker.network": "paastech",
        "traefik.http.routers.shop.rule": "Host(`shop.localhost`)",
        "traefik.http.routers.shop.entrypoints": "web",
        "traefik.http.routers.shop.service": "shop",
        "traefik.http.services.shop.loadbalancer.server.port": "5000",
    }


def test_two_custom_domains_with_tls_and_health_check():
    result = labels(
        hostnames=["shop.example.com", "www.shop.example.com", "shop.paas.test"],
        port=8080,
        replica=2,
        tls=True,
        certresolver="le",
        health_path="/healthz",
        network="edge",
    )
    assert result == {
        "paastech.managed": "true",
        "paastech.instance": "paastech",
        "paastech.project": "shop",
        "paastech.application": "3",
        "paastech.process": "web",
        "paastech.replica": "2",
        "traefik.enable": "true",
        "traefik.docker.network": "edge",
        "traefik.http.routers.shop.rule": (
            "Host(`shop.example.com`) || Host(`www.shop.example.com`) || Host(`shop.paas.test`)"
        ),
        "traefik.http.routers.shop.entrypoints": "websecure",
        "traefik.http.routers.shop.tls.certresolver": "le",
        "traefik.http.routers.shop.service": "shop",
        "traefik.http.services.shop.loadbalancer.server.port": "8080",
        "traefik.http.services.shop.loadbalancer.healthcheck.path": "/healthz",
        "traefik.http.services.shop.loadbalancer.healthcheck.interval": "5s",
    }


def test_worker_is_not_routed():
    assert labels(process_type="worker", replica=4, tls=True, health_path="/x") == {
        "paastech.managed": "true",
        "paastech.instance": "paastech",
        "paastech.project": "shop",
        "paastech.application": "3",
        "paastech.process": "worker",
        "paastech.replica": "4",
        "traefik.enable": "false",
    }


def test_round_trip():
    web = labels(hostnames=["a.localhost", "b.example.org"], port=8000, health_path="/up")
    assert parse_labels(web) == Ownership("shop", 3, "web", 1)
    assert routes_from_labels(web) == (["a.localhost", "b.example.org"], 8000)
    assert health_path_from_labels(web) == "/up"
    worker = labels(process_type="worker")
    assert parse_labels(worker) == Ownership("shop", 3, "worker", 1)
    assert routes_from_labels(worker) is None
    assert health_path_from_labels(worker) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        {},
        {"paastech.project": "shop"},
        {**ownership_labels("shop", 1, "web", 1), "paastech.managed": "false"},
        {**ownership_labels("shop", 1, "web", 1), "paastech.replica": "x"},
        {**ownership_labels("shop", 1, "web", 1), "paastech.application": "0"},
        ownership_labels("shop", 1),  # an image's labels: no process/replica
    ],
)
def test_parse_labels_rejects_foreign_or_broken(value):
    assert parse_labels(value) is None


def test_routes_from_incomplete_labels():
    web = labels()
    del web["traefik.http.services.shop.loadbalancer.server.port"]
    assert routes_from_labels(web) is None
    assert routes_from_labels({"traefik.enable": "true"}) is None
    assert routes_from_labels(None) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"project": "Shop"}, "invalid project"),
        ({"project": "a.b"}, "invalid project"),
        ({"project": "-a"}, "invalid project"),
        ({"process_type": "Web"}, "invalid process type"),
        ({"hostnames": []}, "at least one hostname"),
        ({"hostnames": ["evil`) || Host(`x"]}, "invalid hostname"),
        ({"hostnames": ["UPPER.example"]}, "invalid hostname"),
        ({"port": 0}, "invalid port"),
        ({"health_path": "healthz"}, "must start with"),
        ({"replica": 0}, "start at 1"),
    ],
)
def test_bad_input(overrides, message):
    with pytest.raises(ValueError, match=message):
        labels(**overrides)
