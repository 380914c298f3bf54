"""The Swarm runtime's pure parts (issue 16): the service spec a release becomes, its health
check, the runtime selection, and how the ingress reads Swarm tasks. The cluster behaviour itself
is tested on a real Swarm in tests/integration/test_swarm_runtime.py."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from backend import labels as L
from backend.ingress.routes import RouteTable, Upstream
from backend.ingress.swarm_discovery import containers_from_swarm, log_changes
from backend.pomegranate.docker_runtime import DockerRuntime
from backend.pomegranate.release import Process, ReleasePlan, RollingRuntime
from backend.pomegranate.server import create_runtime
from backend.pomegranate.swarm_runtime import (
    SwarmRuntime,
    health_command,
    overlay_name,
    service_name,
)
from backend.settings import Settings, SettingsError

DIGEST = "sha256:" + "a" * 64


def settings(**kw: object) -> Settings:
    values: dict[str, object] = {
        "runtime": "swarm",
        "swarm_docker_url": "unix:///nowhere/docker.sock",
        "swarm_registry_address": "10.231.7.1:5050",
        "registry_port": 5050,
    }
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


def plan(**kw: object) -> ReleasePlan:
    values: dict[str, object] = {
        "project": "blog",
        "application": 7,
        "image": f"127.0.0.1:5050/paastech/app-blog@{DIGEST}",
        "processes": [Process("web", None, 3), Process("worker", "python worker.py", 2)],
        "env": {"GREETING": "hi"},
        "port": 5000,
        "hostnames": ["blog.localhost"],
        "health_path": "/health",
        "health_timeout": 12.0,
    }
    values.update(kw)
    return ReleasePlan(**values)  # type: ignore[arg-type]


def spec_of(process: str, **kw: object) -> dict:
    s = settings()
    p = plan(**kw)
    runtime = SwarmRuntime(s)
    proc = next(x for x in p.processes if x.type == process)
    return runtime.service_spec(p, proc, overlay_name("blog", instance=s.instance), "")


def test_a_web_process_becomes_a_rolling_health_gated_hardened_service():
    spec = spec_of("web")
    assert spec["Name"] == "paastech_blog_web"
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}
    update = spec["UpdateConfig"]
    assert update["Order"] == "start-first"
    assert update["FailureAction"] == "rollback"
    assert update["Parallelism"] == 1
    container = spec["TaskTemplate"]["ContainerSpec"]
    # Same digest, at the registry address the nodes reach.
    assert container["Image"] == f"10.231.7.1:5050/paastech/app-blog@{DIGEST}"
    assert container["CapabilityDrop"] == ["ALL"]
    assert container["Init"] is True
    assert container["User"] not in ("", "0", "root")
    env = dict(line.split("=", 1) for line in container["Env"])
    assert env["PAASTECH_RELEASE"] == "7"
    assert env["PORT"] == "5000"
    assert env["GREETING"] == "hi"
    health = container["Healthcheck"]
    assert health["Test"][0] == "CMD-SHELL"
    assert "/health" in health["Test"][1]
    assert health["StartPeriod"] == 12 * 1_000_000_000
    limits = spec["TaskTemplate"]["Resources"]["Limits"]
    assert limits["MemoryBytes"] == 256 * 1024 * 1024
    assert limits["NanoCPUs"] == 500_000_000
    assert limits["Pids"] == Settings().pids_limit
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "paastech_blog"}]
    # Tasks are reached at their node's ephemeral port: no routing mesh, no VIP.
    assert spec["EndpointSpec"] == {
        "Mode": "dnsrr",
        "Ports": [{"Protocol": "tcp", "TargetPort": 5000, "PublishMode": "host"}],
    }
    labels = spec["Labels"]
    assert L.parse_labels({**labels, L.REPLICA: "1"}) == L.Ownership("blog", 7, "web", 1)
    # Traefik v3's Swarm provider reads the service's labels, network included.
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.swarm.network"] == "paastech_blog"
    assert "traefik.docker.network" not in labels
    assert labels["traefik.http.services.blog.loadbalancer.server.port"] == "5000"
    assert L.routes_from_labels(labels) == (["blog.localhost"], 5000)
    # The containers carry ownership only: routing is the service's.
    assert not any(k.startswith("traefik.") for k in container["Labels"])


def test_a_worker_is_neither_routed_nor_published_nor_health_checked():
    spec = spec_of("worker")
    assert spec["Name"] == "paastech_blog_worker"
    assert spec["Mode"] == {"Replicated": {"Replicas": 2}}
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert "Healthcheck" not in container
    assert container["Command"][:2] == ["/bin/sh", "-c"]
    assert "python worker.py" in container["Command"][2]
    assert spec["EndpointSpec"] == {"Mode": "dnsrr"}
    assert spec["Labels"]["traefik.enable"] == "false"


def test_a_hostile_project_name_makes_no_service():
    with pytest.raises(ValueError):
        spec_of("web", project="Blog;rm")


def test_names_cannot_collide_across_projects():
    # "_" separates: project names are DNS labels (no "_"), so no project and process type
    # produce another project's service name.
    assert service_name("blog", "7-web", instance="paastech") != service_name(
        "blog-7", "web", instance="paastech"
    )
    assert "." not in service_name("a", "web", instance="paastech")


def run_check(tmp_path: Path, script: str, tool: str) -> list[str]:
    """Run a health-check script with a fake ``tool`` on PATH that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "args"
    fake = bin_dir / tool
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}\n')
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = subprocess.run(["/bin/sh", "-c", script], env=env, check=False)
    assert result.returncode == 0
    return record.read_text().splitlines()


def test_the_health_check_passes_the_path_as_one_argument(tmp_path: Path):
    hostile = "/h'$(touch pwned)`id`;x"
    _, script = health_command(5000, hostile)
    args = run_check(tmp_path, script, "wget")
    assert args[-1] == f"http://127.0.0.1:5000{hostile}"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_the_tcp_health_check_uses_what_the_image_has(tmp_path: Path):
    _, script = health_command(8080, None)
    # A PATH with nc only (no python3): the nc branch runs.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "args"
    (bin_dir / "nc").write_text(f'#!/bin/sh\necho "$@" > {record}\n')
    (bin_dir / "nc").chmod(0o755)
    result = subprocess.run(
        ["/bin/sh", "-c", script], env={"PATH": str(bin_dir)}, check=False, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    assert record.read_text().split() == ["-z", "127.0.0.1", "8080"]
    # No tool at all: unhealthy, never healthy by default.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert subprocess.run(["/bin/sh", "-c", script], env={"PATH": str(empty)}).returncode == 1


def test_the_runtime_is_chosen_by_the_setting():
    assert isinstance(create_runtime(settings()), SwarmRuntime)
    assert type(create_runtime(Settings())) is DockerRuntime
    # Only the Swarm runtime rolls whole releases; the single engine keeps its own switch.
    assert isinstance(SwarmRuntime(settings()), RollingRuntime)
    assert not isinstance(DockerRuntime(Settings()), RollingRuntime)
    with pytest.raises(ValueError, match="swarm_docker_url"):
        SwarmRuntime(settings(swarm_docker_url=""))
    with pytest.raises(SettingsError, match="PAASTECH_RUNTIME"):
        Settings(runtime="kubernetes")  # type: ignore[arg-type]


def test_images_outside_the_platform_registry_are_left_alone():
    runtime = SwarmRuntime(settings())
    assert runtime.node_image("paastech/busybox:latest") == "paastech/busybox:latest"
    runtime = SwarmRuntime(settings(swarm_registry_address=""))
    image = f"127.0.0.1:5050/paastech/app-blog@{DIGEST}"
    assert runtime.node_image(image) == image


def service(labels: dict[str, str], sid: str = "svc1", name: str = "paastech_blog_web") -> dict:
    return {"ID": sid, "Spec": {"Name": name, "Labels": labels}}


def task(tid: str, slot: int, node: str, port: int | None, state: str = "running", **kw) -> dict:
    ports = [] if port is None else [{"TargetPort": 5000, "PublishedPort": port}]
    data = {
        "ID": tid,
        "ServiceID": "svc1",
        "Slot": slot,
        "NodeID": node,
        "DesiredState": "running",
        "Status": {"State": state, "PortStatus": {"Ports": ports}, "Timestamp": "t"},
    }
    data.update(kw)
    return data


def test_the_ingress_routes_to_running_tasks_at_their_node_and_port():
    spec = spec_of("web")
    nodes = {"n1": "10.231.7.11", "n2": "10.231.7.12"}
    tasks = [
        task("t1", 1, "n1", 30001),
        task("t2", 2, "n2", 30002),
        task("t3", 3, "n2", None, state="starting"),  # not healthy yet
        task("t4", 1, "n1", 30003, DesiredState="shutdown"),  # being stopped by an update
        {**task("t5", 1, "n1", 30004), "ServiceID": "someone-else"},
    ]
    containers = containers_from_swarm([service(spec["Labels"])], tasks, nodes)
    assert {c.id for c in containers} == {"t1", "t2", "t3", "t4"}
    table = RouteTable()
    table.sync(containers)
    route = table.lookup("blog.localhost")
    assert route is not None
    assert sorted((u.host, u.port) for u in route.upstreams) == [
        ("10.231.7.11", 30001),
        ("10.231.7.12", 30002),
    ]


def test_services_without_our_labels_are_never_routed():
    spec = spec_of("web")
    unlabelled = {k: v for k, v in spec["Labels"].items() if not k.startswith("paastech.")}
    containers = containers_from_swarm(
        [service(unlabelled)], [task("t1", 1, "n1", 30001)], {"n1": "10.0.0.1"}
    )
    assert containers == []


def test_the_ingress_logs_where_a_host_is_routed_when_it_changes(
    caplog: pytest.LogCaptureFixture,
):
    one = Upstream("t1", "10.231.7.11", 30001)
    two = Upstream("t2", "10.231.7.12", 30002)
    with caplog.at_level(logging.INFO, logger="backend.ingress.swarm_discovery"):
        log_changes({"a.localhost": [one, two]}, {"a.localhost": [two, one]})  # same set
        assert caplog.messages == []
        log_changes({"a.localhost": [one, two]}, {"a.localhost": [one], "b.localhost": [two]})
        log_changes({"b.localhost": [two]}, {})
    assert caplog.messages == [
        "a.localhost: routed to http://10.231.7.11:30001",
        "b.localhost: routed to http://10.231.7.12:30002",
        "b.localhost: routed to nothing",
    ]
