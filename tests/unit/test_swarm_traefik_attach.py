"""Traefik on a real Swarm, and add-on services on it (issue 16): the wiring checked against
Traefik v3's documented Swarm-provider formats (a service's ``traefik.swarm.network`` names the
network Traefik reaches its tasks on, and Traefik must be on that network) and the production
stack's Swarm override (traefik/compose.swarm.yaml)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from backend.pomegranate.addons import AddonSpec
from backend.pomegranate.release import Process, ReleasePlan
from backend.pomegranate.swarm_addons import (
    NODE_LABEL,
    SwarmAddons,
    addon_service_name,
    placement,
    registry_image,
)
from backend.pomegranate.swarm_runtime import SwarmRuntime, overlay_name
from backend.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TRAEFIK = ROOT / "traefik"


def settings(**values: object) -> Settings:
    return Settings(
        _env_file=None, runtime="swarm", swarm_docker_url="unix:///nowhere/docker.sock", **values
    )


def web_spec(s: Settings) -> dict:
    plan = ReleasePlan(
        project="shop",
        application=3,
        image="127.0.0.1:5000/paastech/app-shop@sha256:" + "b" * 64,
        processes=[Process("web", None, 2)],
        env={},
        port=8123,
        hostnames=["shop.paas.example.com"],
        health_path="/health",
        health_timeout=10.0,
    )
    network = overlay_name("shop", instance=s.instance)
    return SwarmRuntime(s).service_spec(plan, plan.processes[0], network, "1000")


def test_the_network_traefik_is_told_to_use_is_the_one_the_tasks_are_on():
    s = settings()
    spec = web_spec(s)
    network = spec["Labels"]["traefik.swarm.network"]
    assert network == f"{s.instance}_shop" == overlay_name("shop", instance=s.instance)
    assert spec["TaskTemplate"]["Networks"] == [{"Target": network}]
    # Traefik load-balances over the tasks itself (dnsrr: no VIP for traefik.swarm.lbswarm).
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    assert "traefik.swarm.lbswarm" not in spec["Labels"]


def test_the_traefik_container_is_a_setting_read_from_the_environment(monkeypatch):
    assert Settings(_env_file=None).swarm_traefik_container == ""
    monkeypatch.setenv("PAASTECH_SWARM_TRAEFIK_CONTAINER", "paastech-traefik")
    assert Settings(_env_file=None).swarm_traefik_container == "paastech-traefik"


def test_the_swarm_override_takes_traefik_off_host_networking_and_names_it_for_pomegranate():
    base = yaml.safe_load((TRAEFIK / "compose.yaml").read_text())
    override = yaml.safe_load((TRAEFIK / "compose.swarm.yaml").read_text())
    assert set(override["services"]) <= set(base["services"])
    traefik = override["services"]["traefik"]
    pomegranate = override["services"]["pomegranate"]["environment"]
    # A host-network container cannot join networks: Traefik gets a container of its own.
    assert traefik["network_mode"] == "bridge"
    assert sorted(traefik["ports"]) == ["443:443", "80:80"]
    assert pomegranate["PAASTECH_SWARM_TRAEFIK_CONTAINER"] == traefik["container_name"]
    assert pomegranate["PAASTECH_RUNTIME"] == traefik["environment"]["PAASTECH_RUNTIME"] == "swarm"
    assert override["services"]["api"]["environment"]["PAASTECH_RUNTIME"] == "swarm"
    # The platform's routes reach the API where it listens in this mode.
    gateway = traefik["environment"]["PAASTECH_PLATFORM_ADDRESS"]
    assert override["services"]["api"]["environment"]["PAASTECH_HOST"] == gateway
    assert override["services"]["web"]["environment"]["PAASTECH_HOST"] == gateway


def render(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "traefik").write_text('#!/bin/sh\necho "traefik $*"\n')
    (fake / "traefik").chmod(0o755)
    values = {
        "PATH": f"{fake}:{os.environ['PATH']}",
        "PAASTECH_TRAEFIK_DIR": str(TRAEFIK),
        "PAASTECH_TRAEFIK_RENDERED": str(tmp_path / "traefik.yml"),
        "PAASTECH_TRAEFIK_ROUTES": str(tmp_path / "routing"),
        "PAASTECH_TLS": "false",
        **env,
    }
    return subprocess.run(
        ["sh", str(TRAEFIK / "start.sh")], env=values, capture_output=True, text=True
    )


def platform_urls(tmp_path: Path) -> list[str]:
    routes = yaml.safe_load((tmp_path / "routing" / "platform.yml").read_text())
    services = routes["http"]["services"].values()
    return [server["url"] for s in services for server in s["loadBalancer"]["servers"]]


def test_start_sh_points_the_platform_routes_at_the_bridge_gateway(tmp_path):
    done = render(tmp_path, PAASTECH_RUNTIME="swarm", PAASTECH_PLATFORM_ADDRESS="172.17.0.1")
    assert done.returncode == 0, done.stderr
    urls = platform_urls(tmp_path)
    assert urls and all(u.startswith("http://172.17.0.1:") for u in urls), urls
    rendered = yaml.safe_load((tmp_path / "traefik.yml").read_text())
    assert "swarm" in rendered["providers"] and "docker" not in rendered["providers"]


@pytest.mark.parametrize("runtime", ["docker", "swarm"])
def test_without_a_platform_address_the_routes_stay_on_loopback(tmp_path, runtime):
    done = render(tmp_path, PAASTECH_RUNTIME=runtime)
    assert done.returncode == 0, done.stderr
    assert all(u.startswith("http://127.0.0.1:") for u in platform_urls(tmp_path))


def test_a_bad_platform_address_is_refused(tmp_path):
    done = render(tmp_path, PAASTECH_RUNTIME="swarm", PAASTECH_PLATFORM_ADDRESS="x|rm -rf /")
    assert done.returncode == 2 and "PAASTECH_PLATFORM_ADDRESS" in done.stderr
    assert done.stdout == ""


# ------------------------------------------------------------------------------ add-on services


def addon_spec(**values: object) -> AddonSpec:
    fields: dict[str, object] = {
        "name": "postgresql-shop-42",
        "kind": "postgres",
        "image": "paastech/postgres:15",
        "password": "p" * 32,
        "memory_mb": 128,
        "projects": ["shop"],
        "alias": "postgresql-shop-42",
        **values,
    }
    return AddonSpec(**fields)  # type: ignore[arg-type]


def test_an_addon_service_is_pinned_to_its_node_and_on_its_projects_overlays():
    s = settings()
    addons = SwarmAddons(SwarmRuntime(s))
    spec = addons.service_spec(
        addon_spec(),
        "10.0.0.1:5050/paastech/addon-postgres:15",
        "node-abc",
        addons.own_network("postgresql-shop-42"),
        {overlay_name("shop", instance=s.instance): "shop"},
    )
    task = spec["TaskTemplate"]
    assert task["Placement"] == {"Constraints": ["node.id==node-abc"]} == placement("node-abc")
    assert spec["Labels"][NODE_LABEL] == "node-abc"
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    # Two servers on one data directory never run at once.
    assert spec["UpdateConfig"]["Order"] == spec["RollbackConfig"]["Order"] == "stop-first"
    assert task["Networks"] == [
        {"Target": f"{s.instance}__addon_postgresql-shop-42"},
        {"Target": f"{s.instance}_shop", "Aliases": ["postgresql-shop-42"]},
    ]
    volume = task["ContainerSpec"]["Mounts"][0]
    assert volume["Source"] == f"{s.instance}.addon.postgresql-shop-42"
    assert volume["Target"] == "/var/lib/paastech/data"
    assert task["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
    assert task["Resources"]["Limits"]["MemoryBytes"] == 128 << 20
    # Never routed by Traefik, and never a project's service (no paastech.managed labels).
    assert spec["Labels"]["traefik.enable"] == "false"
    assert not any(k.startswith("traefik.swarm.") for k in spec["Labels"])
    assert "paastech.managed" not in spec["Labels"]


def test_addon_names_never_collide_with_a_project_s_services():
    # <instance>_<project>_<process> has a non-empty project: never "__".
    assert addon_service_name("redis-shop-1", instance="paastech") == "paastech__addon_redis-shop-1"
    assert len(addon_service_name("postgresql-" + "a" * 20 + "-999999", instance="paastech")) <= 63


@pytest.mark.parametrize(
    ("image", "pushed"),
    [
        ("paastech/postgres:15", "127.0.0.1:5050/paastech/addon-postgres:15"),
        ("paastech/redis:7", "127.0.0.1:5050/paastech/addon-redis:7"),
        ("paastech/redis", "127.0.0.1:5050/paastech/addon-redis:latest"),
    ],
)
def test_addon_images_are_published_under_their_own_repository(image, pushed):
    assert registry_image(image, "127.0.0.1:5050") == pushed


def test_only_a_task_of_the_new_spec_counts_as_ready_after_an_update():
    s = settings()
    addons = SwarmAddons(SwarmRuntime(s))
    own = addons.own_network("postgresql-shop-42")
    shop = overlay_name("shop", instance=s.instance)
    image = "10.0.0.1:5050/paastech/addon-postgres:15"
    old = addons.service_spec(addon_spec(), image, "n1", own, {shop: "shop"})
    new = addons.service_spec(addon_spec(memory_mb=192), image, "n1", own, {shop: "shop"})
    detached = addons.service_spec(addon_spec(projects=[]), image, "n1", own, {})

    def task(spec: dict, networks: list[str]) -> dict:
        attachments = [{"Network": {"Spec": {"Name": n}}} for n in networks]
        return {"Spec": spec["TaskTemplate"], "NetworksAttachments": attachments}

    assert addons._is_wanted(task(new, [own, shop]), new)
    assert not addons._is_wanted(task(old, [own, shop]), new)  # the old memory limit
    assert not addons._is_wanted(task(old, [own, shop]), detached)  # still on the project's
    assert addons._is_wanted(task(detached, [own]), detached)
