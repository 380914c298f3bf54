"""Traefik's Swarm provider in the production stack (issue 16): start.sh swaps the Docker provider
for traefik/provider-swarm.yml when PAASTECH_RUNTIME=swarm, and the labels Pomegranate puts on a
Swarm service are what Traefik v3's Swarm provider reads. Checked against Traefik v3's documented
option and label keys, like tests/unit/test_traefik_config.py does for the Docker provider."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from backend.pomegranate.release import Process, ReleasePlan
from backend.pomegranate.swarm_runtime import SwarmRuntime, overlay_name
from backend.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TRAEFIK = ROOT / "traefik"
SETTINGS = Settings(_env_file=None)
# Traefik v3's providers.swarm options (reference: "Docker Swarm" provider).
SWARM_OPTIONS = {
    "endpoint",
    "username",
    "password",
    "useBindPortIP",
    "exposedByDefault",
    "network",
    "constraints",
    "defaultRule",
    "refreshSeconds",
    "httpClientTimeout",
    "allowEmptyServices",
    "tls",
    "watch",
}
# The Swarm provider's own label keys (everything else is the routing configuration).
SWARM_LABELS = {"traefik.swarm.network", "traefik.swarm.lbswarm"}
ROUTER = re.compile(
    r"^traefik\.http\.routers\.[a-z0-9-]+\.(rule|entrypoints|service|tls\.certresolver|middlewares)$"
)
SERVICE = re.compile(
    r"^traefik\.http\.services\.[a-z0-9-]+\.loadbalancer\."
    r"(server\.port|healthcheck\.path|healthcheck\.interval)$"
)
MIDDLEWARE = re.compile(r"^traefik\.http\.middlewares\.[a-z0-9-]+\.headers\.[a-zA-Z]+$")
GO_DURATION = re.compile(r"^\d+(ms|s|m|h)$")


def render(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "traefik").write_text('#!/bin/sh\necho "traefik $*"\n')
    (fake / "traefik").chmod(0o755)
    values = {
        "PATH": f"{fake}:{os.environ['PATH']}",
        "PAASTECH_ACME_EMAIL": "ops@example.com",
        "PAASTECH_TRAEFIK_DIR": str(TRAEFIK),
        "PAASTECH_TRAEFIK_RENDERED": str(tmp_path / "traefik.yml"),
        "PAASTECH_TRAEFIK_ROUTES": str(tmp_path / "routing"),
        **env,
    }
    return subprocess.run(
        ["sh", str(TRAEFIK / "start.sh")], env=values, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("tls", "source"), [("true", "traefik.yml"), ("false", "traefik-notls.yml")]
)
def test_swarm_runtime_gets_the_swarm_provider_and_nothing_else_changes(tmp_path, tls, source):
    done = render(tmp_path, PAASTECH_TLS=tls, PAASTECH_RUNTIME="swarm")
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load((tmp_path / "traefik.yml").read_text())
    original = yaml.safe_load((TRAEFIK / source).read_text())
    assert set(rendered["providers"]) == {"swarm", "file"}
    assert rendered["providers"]["file"] == original["providers"]["file"]
    swarm = rendered["providers"]["swarm"]
    assert set(swarm) <= SWARM_OPTIONS, set(swarm) - SWARM_OPTIONS
    docker = original["providers"]["docker"]
    # Read-only manager socket, opt-in services of this installation only, as on one engine.
    assert swarm["endpoint"] == docker["endpoint"] == "unix:///var/run/docker.sock"
    assert swarm["exposedByDefault"] is False
    assert swarm["constraints"] == f"Label(`paastech.instance`,`{SETTINGS.instance}`)"
    assert swarm["network"] == docker["network"]
    assert GO_DURATION.match(swarm["refreshSeconds"])
    rest = {k: v for k, v in rendered.items() if k != "providers"}
    assert rest == {k: v for k, v in original.items() if k != "providers"} | (
        {"certificatesResolvers": rendered.get("certificatesResolvers")} if tls == "true" else {}
    )


@pytest.mark.parametrize("runtime", [None, "docker"])
def test_docker_runtime_keeps_the_docker_provider(tmp_path, runtime):
    env = {"PAASTECH_TLS": "false"} | ({"PAASTECH_RUNTIME": runtime} if runtime else {})
    done = render(tmp_path, **env)
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load((tmp_path / "traefik.yml").read_text())
    assert rendered == yaml.safe_load((TRAEFIK / "traefik-notls.yml").read_text())


def test_an_unknown_runtime_is_refused(tmp_path):
    done = render(tmp_path, PAASTECH_TLS="false", PAASTECH_RUNTIME="k8s")
    assert done.returncode == 2 and "PAASTECH_RUNTIME" in done.stderr
    assert done.stdout == ""


def test_compose_hands_traefik_the_runtime_and_the_swarm_block():
    compose = yaml.safe_load((TRAEFIK / "compose.yaml").read_text())
    traefik = compose["services"]["traefik"]
    assert traefik["environment"]["PAASTECH_RUNTIME"] == "${PAASTECH_RUNTIME:-docker}"
    assert "./provider-swarm.yml:/etc/paastech/provider-swarm.yml:ro" in traefik["volumes"]


def spec(**plan: object) -> dict:
    s = Settings(
        _env_file=None,
        runtime="swarm",
        swarm_docker_url="unix:///nowhere/docker.sock",
        tls=plan.pop("tls", True),
    )
    values: dict[str, object] = {
        "project": "shop",
        "application": 3,
        "image": "127.0.0.1:5000/paastech/app-shop@sha256:" + "b" * 64,
        "processes": [Process("web", None, 2)],
        "env": {},
        "port": 8123,
        "hostnames": ["shop.paas.example.com", "www.shop.example"],
        "health_path": "/health",
        "health_timeout": 10.0,
        **plan,
    }
    release = ReleasePlan(**values)  # type: ignore[arg-type]
    network = overlay_name("shop", instance=s.instance)
    return SwarmRuntime(s).service_spec(release, release.processes[0], network, "1000")


@pytest.mark.parametrize("tls", [True, False])
def test_service_labels_are_what_the_swarm_provider_reads(tls):
    labels = spec(tls=tls)["Labels"]
    traefik = {k: v for k, v in labels.items() if k.startswith("traefik.")}
    for key in traefik:
        documented = ROUTER.match(key) or SERVICE.match(key) or MIDDLEWARE.match(key)
        assert documented or key in SWARM_LABELS | {"traefik.enable"}, key
    # Traefik refuses a service that has both traefik.docker.* and traefik.swarm.* labels.
    assert not any(k.startswith("traefik.docker.") for k in traefik)
    assert traefik["traefik.enable"] == "true"
    assert traefik["traefik.swarm.network"] == overlay_name("shop", instance=SETTINGS.instance)
    # Swarm reports no ports for Traefik to detect: the service's port must be named.
    assert traefik["traefik.http.services.shop.loadbalancer.server.port"] == "8123"
    assert traefik["traefik.http.routers.shop.service"] == "shop"
    assert traefik["traefik.http.routers.shop.rule"] == (
        "Host(`shop.paas.example.com`) || Host(`www.shop.example`)"
    )
    assert traefik["traefik.http.routers.shop.entrypoints"] == ("websecure" if tls else "web")
    assert labels["paastech.instance"] == SETTINGS.instance  # the provider's constraint


def test_a_worker_service_is_not_routed():
    labels = spec(processes=[Process("worker", "python worker.py", 1)])["Labels"]
    assert labels.get("traefik.enable") != "true"
    assert not any(k.startswith("traefik.http.") for k in labels)
