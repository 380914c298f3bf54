"""The production wiring in traefik/: Traefik's static and dynamic configuration, the compose
stack and its Dockerfile, checked against Traefik v3's documented keys and against the files of
this repository; and the Traefik labels Pomegranate writes (backend/labels.py), checked against
the documented Docker-provider label keys."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from backend import routing
from backend.labels import container_labels
from backend.metrics import traefik as traefik_metrics
from backend.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TRAEFIK = ROOT / "traefik"
SETTINGS = Settings(_env_file=None)
# Where compose.yaml mounts the traefik/ files inside the Traefik container.
MOUNT = "/etc/paastech"

ROUTES_DIR = "/etc/paastech/routing"  # Traefik's file provider directory


def load(name: str) -> dict:
    return yaml.safe_load((TRAEFIK / name).read_text())


@pytest.fixture(scope="module")
def static() -> dict:
    return load("traefik.yml")


@pytest.fixture(scope="module")
def notls() -> dict:
    return load("traefik-notls.yml")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load("compose.yaml")


def in_repo(container_path: str, compose: dict) -> Path:
    """The repository file behind a path of the Traefik container (through its bind mounts)."""
    for volume in compose["services"]["traefik"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith(".") and (
            container_path == target or container_path.startswith(target + "/")
        ):
            return (TRAEFIK / source / os.path.relpath(container_path, target)).resolve()
    raise AssertionError(f"{container_path} is not mounted into the traefik service")


# ---------------------------------------------------------------------- static configuration


def test_entrypoints_redirect_http_to_https(static):
    web, websecure = static["entryPoints"]["web"], static["entryPoints"]["websecure"]
    assert web["address"] == ":80"
    assert web["http"]["redirections"]["entryPoint"] == {
        "to": "websecure",
        "scheme": "https",
        "permanent": True,
    }
    assert websecure["address"] == ":443"
    assert set(static["entryPoints"]) == {"web", "websecure", "metrics"}


def test_prometheus_metrics_on_loopback_with_router_and_service_labels(static, notls, compose):
    """Issue 18: the API scrapes Traefik's /metrics for per-project request metrics."""
    for config in (static, notls):
        assert config["entryPoints"]["metrics"] == {"address": "127.0.0.1:8082"}
        prometheus = config["metrics"]["prometheus"]
        assert prometheus["entryPoint"] == "metrics"
        assert prometheus["addRoutersLabels"] is True
        assert prometheus["addServicesLabels"] is True
        # One Traefik bucket per bucket of the platform's latency histogram.
        assert prometheus["buckets"] == traefik_metrics.bucket_bounds_seconds()
    env = compose["x-platform"]["environment"]
    assert env["PAASTECH_TRAEFIK_METRICS_URL"] == "http://127.0.0.1:8082/metrics"


def test_docker_provider_reads_only_this_installations_labelled_containers(static, notls):
    for config in (static, notls):
        docker = config["providers"]["docker"]
        assert docker["endpoint"] == "unix:///var/run/docker.sock"
        assert docker["exposedByDefault"] is False
        assert docker["network"] == SETTINGS.docker_network
        assert docker["constraints"] == f"Label(`paastech.instance`,`{SETTINGS.instance}`)"


def test_acme_resolver_is_the_one_the_labels_name(static):
    resolvers = static["certificatesResolvers"]
    assert list(resolvers) == [SETTINGS.certresolver]
    acme = resolvers[SETTINGS.certresolver]["acme"]
    assert acme["storage"] == "/letsencrypt/acme.json"
    assert acme["httpChallenge"] == {"entryPoint": "web"}
    assert acme["email"] == "@PAASTECH_ACME_EMAIL@"  # filled in by start.sh


def test_access_log_on_dashboard_off(static, notls):
    for config in (static, notls):
        assert "accessLog" in config
        assert config["api"] == {"dashboard": False}
        assert config["global"] == {"checkNewVersion": False, "sendAnonymousUsage": False}


def test_notls_variant_is_plain_http(notls):
    assert notls["entryPoints"] == {
        "web": {
            "address": ":80",
            "transport": {"respondingTimeouts": {"readTimeout": "600s"}},
        },
        "metrics": {"address": "127.0.0.1:8082"},
    }
    assert "certificatesResolvers" not in notls


@pytest.mark.parametrize(
    ("static_name", "entrypoint", "tls"),
    [("traefik.yml", "websecure", True), ("traefik-notls.yml", "web", False)],
)
def test_dynamic_file_routes_the_api(compose, static_name, entrypoint, tls):
    static = load(static_name)
    # One directory (issue 19): start.sh copies the matching dynamic file there as platform.yml,
    # beside the custom-domain routers the API writes (backend/routing.py).
    assert static["providers"]["file"] == {"directory": ROUTES_DIR, "watch": True}
    path = TRAEFIK / "dynamic" / ("tls.yml" if tls else "notls.yml")
    assert path.is_file(), path
    dynamic = yaml.safe_load(path.read_text())
    router = dynamic["http"]["routers"]["paastech-api"]
    assert router["rule"] == 'Host(`api.{{ env "PAASTECH_BASE_DOMAIN" }}`)'
    assert router["entryPoints"] == [entrypoint]
    assert set(router["entryPoints"]) <= set(static["entryPoints"])
    if tls:
        assert router["tls"]["certResolver"] in static["certificatesResolvers"]
    else:
        assert "tls" not in router
    service = dynamic["http"]["services"][router["service"]]["loadBalancer"]
    api_port = compose["x-platform"]["environment"]["PAASTECH_API_PORT"]
    assert service["servers"] == [{"url": f"http://127.0.0.1:{api_port}"}]
    assert service["healthCheck"]["path"] == "/healthz"


@pytest.mark.skipif(shutil.which("sh") is None, reason="no /bin/sh")
@pytest.mark.parametrize("tls", ["true", "false"])
def test_start_script_renders_the_static_configuration(tmp_path, tls):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "traefik").write_text('#!/bin/sh\necho "traefik $*"\n')
    (fake / "traefik").chmod(0o755)
    out = tmp_path / "traefik.yml"
    env = {
        "PATH": f"{fake}:{os.environ['PATH']}",
        "PAASTECH_TLS": tls,
        "PAASTECH_ACME_EMAIL": "ops+paas@example.com",
        "PAASTECH_TRAEFIK_DIR": str(TRAEFIK),
        "PAASTECH_TRAEFIK_RENDERED": str(out),
        "PAASTECH_TRAEFIK_ROUTES": str(tmp_path / "routing"),
    }
    done = subprocess.run(
        ["sh", str(TRAEFIK / "start.sh")], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"traefik --configFile={out}"
    rendered = yaml.safe_load(out.read_text())
    if tls == "true":
        acme = rendered["certificatesResolvers"]["letsencrypt"]["acme"]
        assert acme["email"] == "ops+paas@example.com"
    else:
        assert rendered == load("traefik-notls.yml")
    platform = (tmp_path / "routing" / "platform.yml").read_text()
    dynamic = "tls.yml" if tls == "true" else "notls.yml"
    assert platform == (TRAEFIK / "dynamic" / dynamic).read_text()

    bad = subprocess.run(
        ["sh", str(TRAEFIK / "start.sh")],
        env={**env, "PAASTECH_TLS": "true", "PAASTECH_ACME_EMAIL": "x|y@z.io"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "PAASTECH_ACME_EMAIL" in bad.stderr


# ---------------------------------------------------------------------- compose and Dockerfile


def test_compose_runs_the_whole_platform(compose):
    services = compose["services"]
    assert {"api", "pomegranate", "gitd", "web", "postgres", "traefik", "migrate"} <= set(services)
    commands = {name: services[name].get("command") for name in ("api", "pomegranate", "gitd")}
    assert commands == {"api": ["api"], "pomegranate": ["pomegranate"], "gitd": ["gitd"]}
    assert services["traefik"]["image"].startswith("traefik:v3")
    assert services["postgres"]["image"].startswith("postgres:")
    web = services["web"]
    assert web["network_mode"] == "host"
    assert (ROOT / web["build"]["dockerfile"]).is_file()
    assert web["environment"]["PAASTECH_API_URL"].endswith("/graphql")
    assert "volumes" not in web  # no docker socket, no platform data


def test_compose_references_only_existing_files(compose):
    build = compose["x-platform"]["build"]
    context = (TRAEFIK / build["context"]).resolve()
    assert context == ROOT
    dockerfile = context / build["dockerfile"]
    assert dockerfile.is_file()
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (TRAEFIK / source).exists(), f"{name}: {source} does not exist"
            elif source.startswith("/"):
                assert source == "/var/run/docker.sock", f"{name} mounts host path {source}"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    script = compose["services"]["traefik"]["entrypoint"][-1]
    assert in_repo(script, compose).is_file()


def test_dockerfile_copies_existing_paths():
    dockerfile = (TRAEFIK / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    copies = re.findall(r"^COPY (.+)$", dockerfile, re.M)
    assert copies
    for line in copies:
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), source
    for package in ("git", "openssh-client"):
        assert package in dockerfile


def test_only_pomegranate_writes_the_docker_socket_and_traefik_reads_it(compose):
    holders = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            if "docker.sock" in volume:
                holders[name] = volume
    assert holders == {
        "pomegranate": "/var/run/docker.sock:/var/run/docker.sock",
        "traefik": "/var/run/docker.sock:/var/run/docker.sock:ro",
    }


def test_traefik_reads_the_routing_table_the_api_writes(compose):
    """Issue 19: custom domains route through backend/routing.py's table, not labels: the API
    writes traefik-domains.yml into a volume Traefik's file provider watches."""
    api_dir = compose["x-platform"]["environment"]["PAASTECH_ROUTING_DIR"]
    assert f"paastech-routing:{api_dir}" in compose["x-platform"]["volumes"]
    assert f"paastech-routing:{ROUTES_DIR}" in compose["services"]["traefik"]["volumes"]
    assert "paastech-routing" in compose["volumes"]
    domains = {"www.shop.example": "shop", "shop.example": "shop", "blog.example": "blog"}
    for tls in (True, False):
        settings = Settings(tls=tls, routing_dir=api_dir)
        assert routing.routing_dir(settings) == Path(api_dir)
        routers = yaml.safe_load(routing.traefik_config(domains, settings))["http"]["routers"]
        assert routers["shop-domains"]["rule"] == "Host(`shop.example`) || Host(`www.shop.example`)"
        assert routers["shop-domains"]["service"] == "shop@docker"
        assert routers["blog-domains"]["entryPoints"] == ["websecure" if tls else "web"]


def test_only_pomegranate_runs_privileged_with_the_builder(compose):
    """Issue 10: the isolated builder (rootful buildah) needs root and privileges in Pomegranate's
    container; no other service gets them."""
    privileged = {
        name: (service.get("user"), service.get("privileged"))
        for name, service in compose["services"].items()
        if service.get("privileged") or service.get("user") in ("0", "0:0", "root")
    }
    assert privileged == {"pomegranate": ("0:0", True)}
    dockerfile = (TRAEFIK / "Dockerfile").read_text()
    for package in ("buildah", "runc", "containernetworking-plugins", "iptables"):
        assert package in dockerfile
    assert "scripts/build-network.sh" in dockerfile
    assert "scripts/project-network-firewall.sh" in dockerfile  # issue 11, Docker's gap


def test_platform_environment_names_real_settings(compose):
    fields = set(Settings.__struct_fields__)
    env = compose["x-platform"]["environment"]
    for key in env:
        assert key.startswith("PAASTECH_")
        assert key.removeprefix("PAASTECH_").lower() in fields, key
    assert env["PAASTECH_DATABASE_URL"].startswith("postgres://paastech:")
    assert env["PAASTECH_TLS"] == "${PAASTECH_TLS:-true}"
    assert env["PAASTECH_PUBLIC_PORT"] == "${PAASTECH_PUBLIC_PORT:-443}"
    assert env["PAASTECH_DEVELOPMENT"] == "false"
    assert env["PAASTECH_CERTRESOLVER"] == SETTINGS.certresolver
    assert env["PAASTECH_INSTANCE"] == SETTINGS.instance
    assert env["PAASTECH_DOCKER_NETWORK"] == SETTINGS.docker_network
    # Internal ports on loopback; gitd alone listens on every interface (git push on 2222).
    assert env["PAASTECH_HOST"] == "127.0.0.1"
    assert compose["services"]["gitd"]["environment"]["PAASTECH_HOST"] == "0.0.0.0"
    for name in ("api", "pomegranate", "gitd", "migrate", "traefik"):
        assert compose["services"][name]["network_mode"] == "host", name


def test_every_required_variable_is_in_env_example():
    text = (TRAEFIK / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {
        line.split("=", 1)[0]
        for line in (TRAEFIK / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert required == {"POSTGRES_PASSWORD", "PAASTECH_BASE_DOMAIN", "DOCKER_GID"}
    assert required <= example
    assert {"PAASTECH_ACME_EMAIL", "PAASTECH_TLS", "PAASTECH_PUBLIC_PORT"} <= example


# ---------------------------------------------------------------------- labels


ROUTER = re.compile(
    r"^traefik\.http\.routers\.(?P<name>[a-z0-9-]+)\."
    r"(rule|entrypoints|service|tls\.certresolver|middlewares)$"
)
SERVICE = re.compile(
    r"^traefik\.http\.services\.(?P<name>[a-z0-9-]+)\.loadbalancer\."
    r"(server\.port|healthcheck\.path|healthcheck\.interval)$"
)
OTHER = {"traefik.enable", "traefik.docker.network"}
GO_DURATION = re.compile(r"^\d+(ms|s|m|h)$")


@pytest.mark.parametrize(
    ("project", "hostnames", "tls", "health"),
    [
        ("shop", ["shop.paas.example.com"], True, "/health"),
        ("a-b-1", ["a-b-1.localhost", "www.example.org", "example.org"], False, None),
        ("x" * 63, [f"{'x' * 63}.paas.example.com", "app.customer.test"], True, "/"),
    ],
)
def test_labels_use_only_documented_traefik_keys(static, project, hostnames, tls, health):
    labels = container_labels(
        project,
        7,
        "web",
        2,
        hostnames,
        8123,
        network=SETTINGS.docker_network,
        tls=tls,
        certresolver=SETTINGS.certresolver,
        health_path=health,
    )
    traefik = {k: v for k, v in labels.items() if k.startswith("traefik.")}
    names = set()
    for key in traefik:
        match = ROUTER.match(key) or SERVICE.match(key)
        assert match or key in OTHER, f"undocumented label key {key}"
        if match:
            names.add(match["name"])
    assert names == {project}
    assert traefik["traefik.enable"] == "true"
    assert traefik["traefik.docker.network"] == static["providers"]["docker"]["network"]
    router = f"traefik.http.routers.{project}"
    assert traefik[f"{router}.rule"] == " || ".join(f"Host(`{h}`)" for h in hostnames)
    entrypoints = traefik[f"{router}.entrypoints"].split(",")
    assert set(entrypoints) <= set(static["entryPoints"])
    assert entrypoints == (["websecure"] if tls else ["web"])
    assert traefik.get(f"{router}.tls.certresolver") == (SETTINGS.certresolver if tls else None)
    if tls:
        assert traefik[f"{router}.tls.certresolver"] in static["certificatesResolvers"]
    assert traefik[f"{router}.service"] == project
    service = f"traefik.http.services.{project}.loadbalancer"
    assert traefik[f"{service}.server.port"] == "8123"
    if health:
        assert traefik[f"{service}.healthcheck.path"] == health
        assert GO_DURATION.match(traefik[f"{service}.healthcheck.interval"])
    else:
        assert not any("healthcheck" in key for key in traefik)
    # Traefik's constraint selects the container by the instance label.
    assert labels["paastech.instance"] == SETTINGS.instance


def test_other_process_types_are_not_routed():
    labels = container_labels(
        "shop",
        1,
        "worker",
        1,
        [],
        5000,
        network="paastech",
        tls=True,
        certresolver="letsencrypt",
        health_path=None,
    )
    assert {k: v for k, v in labels.items() if k.startswith("traefik.")} == {
        "traefik.enable": "false"
    }


def test_traefik_and_the_embedded_ingress_certify_the_same_hostnames(static):
    """Issue 21: both edges read the same labels, so they route and certify the same hostnames;
    both validate HTTP-01 on the plain-HTTP listener and redirect the rest to HTTPS."""
    from backend.ingress.certstore import is_certifiable
    from backend.ingress.server import CHALLENGE_PREFIX
    from backend.labels import routes_from_labels

    hosts = ["shop.example.com", "www.shop.example"]
    labels = container_labels(
        "shop", 1, "web", 1, hosts, 5000, network="paastech", tls=True,
        certresolver=SETTINGS.certresolver, health_path=None,
    )  # fmt: skip
    traefik_hosts = re.findall(r"Host\(`([^`]+)`\)", labels["traefik.http.routers.shop.rule"])
    assert labels["traefik.http.routers.shop.tls.certresolver"] in static["certificatesResolvers"]
    assert routes_from_labels(labels) == (traefik_hosts, 5000)
    assert all(is_certifiable(h) for h in traefik_hosts)
    # Challenge on the HTTP entry point, which redirects everything else to HTTPS.
    challenge = static["certificatesResolvers"][SETTINGS.certresolver]["acme"]["httpChallenge"]
    web = static["entryPoints"][challenge["entryPoint"]]
    assert web["http"]["redirections"]["entryPoint"]["scheme"] == "https"
    assert CHALLENGE_PREFIX == "/.well-known/acme-challenge/"


def test_hsts_is_a_traefik_headers_middleware_both_edges_read():
    """Issue 21: a project's HSTS is Traefik's documented headers middleware on its router; the
    embedded ingress reads the same labels back."""
    from backend.ingress.routes import container_from_inspect
    from backend.labels import hsts_from_labels

    labels = container_labels(
        "shop", 1, "web", 1, ["shop.example.com"], 5000, network="paastech", tls=True,
        certresolver=SETTINGS.certresolver, health_path=None, hsts_seconds=31536000,
    )  # fmt: skip
    assert labels["traefik.http.routers.shop.middlewares"] == "shop-hsts"
    assert labels["traefik.http.middlewares.shop-hsts.headers.stsSeconds"] == "31536000"
    middleware = re.compile(r"^traefik\.http\.middlewares\.([a-z0-9-]+)\.headers\.stsSeconds$")
    for key in labels:
        if key.startswith("traefik."):
            assert ROUTER.match(key) or SERVICE.match(key) or middleware.match(key) or key in OTHER
    assert hsts_from_labels(labels) == 31536000
    inspect = {
        "Id": "c1",
        "Name": "/shop-web-1",
        "Config": {"Labels": labels},
        "State": {"Running": True},
        "NetworkSettings": {"Ports": {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "4000"}]}},
    }
    container = container_from_inspect(inspect)
    assert container is not None and container.hsts_seconds == 31536000

    plain = container_labels(
        "shop", 1, "web", 1, ["shop.example.com"], 5000, network="paastech", tls=True,
        certresolver=SETTINGS.certresolver, health_path=None,
    )  # fmt: skip
    assert hsts_from_labels(plain) == 0 and not any("middlewares" in k for k in plain)
    # A middlewares label naming something else is not ours: no HSTS.
    assert hsts_from_labels({**labels, "traefik.http.routers.shop.middlewares": "other"}) == 0
