"""All platform settings in one place, read from the environment with the PAASTECH_ prefix.

`Settings(**overrides)` reads every PAASTECH_<FIELD> variable (any case), lets the keyword
arguments win, and converts and checks the whole with msgspec: ints, floats and bools from their
text, JSON for list fields, Literal choices and the Meta bounds below. A bad value raises
SettingsError naming the variable. msgspec, not pydantic-settings: the same typed reading cost
up to 7 MB of private memory in each server process, 22 MB in all four (issue 17,
docs/architecture.md 2.4.15 "Eighth pass"), where msgspec's compiled decoder costs under one.
"""

from __future__ import annotations

import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, field

ENV_PREFIX = "PAASTECH_"
# What pydantic-settings accepted for a bool, kept so existing environments still read.
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


class SettingsError(ValueError):
    """A setting (an environment variable or a keyword argument) has a value of the wrong kind."""


class _FromEnvironment(msgspec.StructMeta):
    """`Settings(**overrides)`: the environment, then the overrides, converted and checked."""

    def __call__(cls, **overrides: Any) -> Any:
        given = {**_environment(cls), **overrides}
        try:
            settings = msgspec.convert(given, cls, strict=False, dec_hook=_decode)
        except msgspec.ValidationError as exc:
            raise SettingsError(_explain(str(exc))) from None
        settings._fill_defaults(set(given))
        return settings


def _environment(cls: type) -> dict[str, Any]:
    """The PAASTECH_ variables of the fields, as msgspec's lax conversion takes them."""
    kinds = {f.name: f.type for f in msgspec.structs.fields(cls)}
    out: dict[str, Any] = {}
    for key, text in os.environ.items():
        name = key[len(ENV_PREFIX) :].lower() if key.upper().startswith(ENV_PREFIX) else ""
        kind = kinds.get(name)
        if kind is None or (text == "" and kind is not str):
            continue  # not a setting, or empty: the default (as an unset variable)
        if kind is bool and text.lower() in _TRUE | _FALSE:
            out[name] = text.lower() in _TRUE
        elif kind == list[str]:
            try:
                out[name] = msgspec.json.decode(text)
            except msgspec.DecodeError:
                raise SettingsError(f"{key}: expected a JSON list of strings") from None
        else:
            out[name] = text
    return out


def _decode(kind: type, value: object) -> object:
    # The one field type msgspec leaves to us: paths.
    if kind is Path and isinstance(value, str | os.PathLike):
        return Path(value)
    raise NotImplementedError


def _explain(message: str) -> str:
    found = re.search(r"at `\$\.(\w+)[^`]*`", message)
    if not found:
        return f"invalid settings: {message}"
    name = found.group(1)
    detail = message[: found.start()].rstrip(" -")
    return f"setting {name} ({ENV_PREFIX}{name.upper()}): {detail}"


class Settings(msgspec.Struct, kw_only=True, metaclass=_FromEnvironment):
    data_dir: Path = Path(".data")
    # Empty means the embedded default: a SQLite file in the data dir.
    database_url: str = ""
    base_domain: str = "localhost"
    development: bool = True

    host: str = "127.0.0.1"
    api_port: int = 8000
    web_port: int = 3000
    ingress_port: int = 8080
    # Port users reach apps on: the embedded ingress here, 80/443 behind Traefik in production.
    public_port: int = 8080
    gitd_port: int = 2222
    git_host: str = ""  # the host name users put in git URLs; empty: the same as host
    api_grpc_port: int = 50052
    pomegranate_port: int = 50051

    # Key for encryption at rest and for the internal gRPC shared secret.
    # Generated and kept in the data dir on first start when not given.
    secret_key: str = ""
    # Issue 12: a process that must not hold the master key (gitd and its hook) gets only the
    # derived internal-RPC key here (`python -m backend derive-key internal-rpc`).
    internal_key: str = ""

    session_token_days: int = 30
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    login_failure_window_seconds: int = 900

    # Issue 12: failed logins are counted per (account, address): after the free ones each
    # further attempt waits login_delay_base_seconds, doubling, up to login_delay_max_seconds.
    # login_max_failures_per_account is the number of free failures per (account, address).
    login_delay_base_seconds: float = 5.0
    login_delay_max_seconds: float = 900.0
    signup_max_per_address: int = 5
    signup_window_seconds: int = 3600
    # Password hashing runs on this many threads; more waiting than the queue: RATE_LIMITED.
    password_hash_workers: int = 2
    # argon2id parameters (backend/security.py PROFILES): RFC 9106's low-memory set (64 MiB,
    # 3 passes, the library's default). "cheapest" is for test suites only.
    password_hash_profile: Literal["rfc_9106_low_memory", "rfc_9106_high_memory", "cheapest"] = (
        "rfc_9106_low_memory"
    )
    password_hash_queue: int = 16
    # Query cost: every field costs 1, times the list sizes above it (first:, tail:, or
    # query_default_list_size for lists without an argument); over the budget: refused.
    max_query_cost: int = 50_000
    query_default_list_size: int = 20
    max_subscriptions_per_connection: int = 10
    max_subscriptions_per_client: int = 20
    max_domains_per_project: int = 20
    # Resolver the domain checks use ("host:port"); empty: the system's resolvers.
    dns_resolver: str = ""

    # Issue 12: gitd. Connections not yet authenticated have their own caps (per address, and
    # in total: when full, the oldest waiting one is dropped, so idle sockets cannot block pushes).
    gitd_max_unauthenticated: int = 64
    gitd_max_unauthenticated_per_address: int = 8
    gitd_max_authenticated: int = 128
    gitd_login_timeout_seconds: float = 20
    gitd_idle_timeout_seconds: float = 180  # no byte either way on an authenticated connection
    gitd_connection_max_seconds: float = 3 * 3600  # one connection, however busy

    # Addresses of reverse proxies (Traefik) whose X-Forwarded-For the API trusts, comma
    # separated; empty: none, the peer address is the client (login rate limits use it).
    trusted_proxies: str = ""

    max_query_depth: int = 10
    max_query_tokens: int = 2000
    max_request_bytes: int = 1_000_000

    applications_page_max: Annotated[int, Meta(ge=1)] = 100

    # Pomegranate (deployment manager). Base images are built locally by scripts/base-images.sh.
    docker_url: str = ""  # empty: the local engine (DOCKER_HOST or /var/run/docker.sock)
    docker_network: str = "paastech"
    # This installation's name on the Docker engine (label paastech.instance).
    instance: str = "paastech"
    # Issue 16: which runtime Pomegranate drives. "docker": one engine (docker_url), the default;
    # "swarm": a Docker Swarm through a manager's API (swarm_docker_url); builds stay on this host.
    runtime: Literal["docker", "swarm"] = "docker"
    swarm_docker_url: str = ""  # e.g. unix:///var/tmp/paastech-cluster/n1/docker.sock
    # The engine APIs of the Swarm nodes besides the manager's (a JSON list; e.g. TLS or SSH
    # URLs the operator provides): an engine serves its own containers only, so Pomegranate
    # reaches a node's through its URL for the tasks' stats (issue 18, backend/metrics/swarm.py)
    # and for the add-ons pinned there: backups, restores, volume sizes, pg:psql/redis:cli
    # (backend/pomegranate/swarm_node_engines.py). Read both through swarm_node_engine_urls.
    swarm_node_docker_urls: list[str] = field(default_factory=list)
    # The setting's former name (stats only), still read: its URLs join swarm_node_docker_urls.
    swarm_stats_docker_urls: list[str] = field(default_factory=list)
    # The platform registry as the Swarm nodes reach it ("host:port"); empty: registry_address.
    swarm_registry_address: str = ""
    # Traefik's container on the Swarm manager (traefik/compose.swarm.yaml names it
    # paastech-traefik); Pomegranate connects it to each project's overlay network, made
    # attachable for it, so Traefik's Swarm provider reaches the tasks. Empty: nothing attached.
    swarm_traefik_container: str = ""
    # The platform operator's secret (issue 16): sent as X-PaaSTech-Operator-Token, it alone
    # opens the node API (GraphQL nodes, drainNode, ...); empty (the default) or shorter than 32
    # characters: that API answers FORBIDDEN to everyone. A Client's login never opens it.
    operator_token: str = ""
    python_base_image: str = "paastech/python:bookworm"
    node_base_image: str = "paastech/node:bookworm"
    static_base_image: str = "paastech/busybox:latest"
    default_port: int = 5000
    default_memory_mb: int = 256
    default_cpu: float = 0.5
    # The CPU a new release's container may use until it is healthy, then its limit applies
    # (Cloud Run's "startup CPU boost"): a Python app starting under 0.5 CPU took about 200 ms
    # longer to answer (issue 17). 0: containers start at their limit.
    startup_cpu: Annotated[float, Meta(ge=0, le=64)] = 1.0
    pids_limit: int = 256
    build_timeout_seconds: int = 600
    health_check_timeout_seconds: float = 30.0
    images_kept_per_project: int = 5
    max_concurrent_builds: int = 2
    reconcile_interval_seconds: float = 30.0
    max_source_bytes: int = 512 * 1024 * 1024
    build_log_line_max: int = 4000
    # HTTPS for apps (Traefik's websecure entry point, or the embedded ingress's own TLS).
    # Unset: on for a real base domain, off for localhost (no CA issues certificates for it).
    tls: bool = False  # unset: see _fill_defaults
    certresolver: str = "letsencrypt"

    # Issue 19: where the API writes the custom-domain routing table (backend/routing.py) that
    # the embedded ingress and Traefik's file provider read; empty: <data dir>/routing.
    routing_dir: str = ""

    # Issue 10: the isolated builder (buildah, backend/pomegranate/builder.py) and the platform
    # image registry (scripts/registry.sh). Limits apply to each build as a whole.
    registry_port: int = 5050
    registry_username: str = "paastech"
    registry_password: str = ""  # empty: the one scripts/registry.sh keeps in the data dir
    build_memory_mb: int = 1024
    build_cpu: float = 1.0
    build_pids_limit: int = 512
    build_disk_mb: int = 2048  # growth of the project's build storage during one build
    build_cache_mb: int = 8192  # a project's build cache larger than this is cleared first
    build_subnet: str = "10.89.0.0/24"  # the RUN steps' network (scripts/build-network.sh)
    build_ca_bundle: str = ""  # empty: /etc/ssl/certs/ca-certificates.crt when present
    build_base_store: str = ""  # empty: <data dir>/builder/base (base images, read-only)
    # --- Issue 21: HTTPS on the embedded ingress, certificates by ACME ----------------------
    ingress_host: str = ""  # the ingress's bind address; empty: host (0.0.0.0 for a real box)
    ingress_https_port: int = 8443
    # Port in the HTTP -> HTTPS redirect (443 behind a port forward); 0: ingress_https_port.
    public_https_port: int = 0
    acme_directory_url: str = "https://acme-v02.api.letsencrypt.org/directory"
    acme_email: str = ""
    # CA bundle that verifies the ACME server's own HTTPS (a test CA like Pebble); empty: system.
    acme_ca_bundle: str = ""
    # DNS server ("host:port") asked whether a hostname points here; empty: the system resolver.
    acme_resolver: str = ""
    # This box's public addresses, comma separated; empty: found from the network interfaces.
    acme_public_addresses: str = ""
    acme_orders_per_hour: Annotated[int, Meta(ge=1)] = 20  # all hostnames together
    acme_backoff_seconds: Annotated[float, Meta(gt=0)] = 60.0  # first retry after a failure
    acme_backoff_max_seconds: Annotated[float, Meta(gt=0)] = 86400.0
    acme_renew_fraction: Annotated[float, Meta(gt=0, lt=1)] = 1 / 3  # of the lifetime left
    acme_check_interval_seconds: Annotated[float, Meta(gt=0)] = 10.0
    acme_order_timeout_seconds: Annotated[float, Meta(gt=0)] = 90.0
    hsts_max_age_seconds: int = 31536000  # for projects that turn HSTS on

    # Issue 18: metrics. Operators read the API's /metrics (Prometheus format) with this token as
    # a bearer token; empty: /metrics answers 401 to everyone.
    metrics_token: str = ""
    metrics_sample_seconds: Annotated[float, Meta(gt=0)] = 10.0  # container samples
    # Production behind Traefik: its Prometheus endpoint (traefik.yml's `metrics` entry point,
    # e.g. http://127.0.0.1:8082/metrics), scraped for per-project request metrics
    # (backend/metrics/traefik.py). Empty: the embedded ingress reports them instead.
    traefik_metrics_url: str = ""
    # Alert webhooks: attempts per alert, the first retry's delay (doubling), and whether a
    # webhook may point at a loopback/private address (a local receiver; off: tenants could
    # make the platform call its own internal ports).
    webhook_attempts: Annotated[int, Meta(ge=1, le=10)] = 3
    webhook_retry_seconds: Annotated[float, Meta(ge=0)] = 2.0
    webhook_allow_private: bool = False

    # Issue 11: tenant isolation at run time (docs/architecture.md, "Tenant isolation").
    # Each project gets a bridge network of its own with an explicit subnet carved from this pool
    # (Docker's default pools hold only ~30 bridges); /26 leaves room for 60 containers, i.e. two
    # releases side by side during a switch.
    project_network_pool: str = "10.210.0.0/16"
    project_network_prefix: Annotated[int, Meta(ge=16, le=29)] = 26
    # Pomegranate installs scripts/project-network-firewall.sh for the pool on this host (it
    # drops what is routed between two project networks, through the gap Docker's own rules
    # leave each time the engine creates a network). Off only for an engine on another host.
    project_network_firewall: bool = True
    # The uid:gid a container runs as when its image names no numeric non-root USER.
    container_user: str = "10001:10001"
    # Quotas per Client (issue 11), generous defaults; an administrator overrides them per Client
    # with `python -m backend quota` (table client_quota). See backend/services/quotas.py.
    quota_projects: float = 50
    quota_replicas: float = 50  # containers of all projects together (sum of the scales)
    quota_memory_mb: float = 16384  # memory of all those containers
    quota_cpu: float = 16  # CPU of all those containers
    quota_build_minutes_per_hour: float = 120
    quota_repository_mb: float = 1024  # each repository; also git's receive.maxInputSize
    quota_image_mb_per_project: float = 4096  # each built image
    quota_build_log_lines: float = 10000  # per build; more is dropped, with a note
    quota_runtime_log_lines_per_second: float = 1000  # per log stream; more is dropped
    quota_volumes_per_project: float = 5  # persistent volumes of one project (issue 15)
    quota_volume_mb: float = 10240  # space in use across all the Client's volumes (issue 15)
    # The image of the short-lived container that gives a new volume to the app's user.
    volume_init_image: str = "paastech/busybox:latest"
    quota_addons: float = 10  # add-ons (PostgreSQL, Redis) per Client (issue 15)

    # Issue 14: runtime versions the buildpacks offer (.python-version/runtime.txt, engines.node),
    # "version=image" comma separated; scripts/base-images.sh builds the images. Without a
    # request, python_base_image/node_base_image are used.
    python_runtimes: str = "3.11=paastech/python:bookworm,3.13=paastech/python:trixie"
    node_runtimes: str = "18.19.0=paastech/node:bookworm,20.19.2=paastech/node:trixie"
    # The Procfile's `release:` command runs once per release before it goes live; longer fails it.
    release_timeout_seconds: int = 600
    # Issue 14: one-off commands (`paastech run`, `ssh git@HOST run NAME -- CMD`). A command
    # running longer is killed and its container removed; a Client may run this many at once
    # (attached and detached together, all projects).
    run_timeout_seconds: Annotated[int, Meta(ge=1)] = 3600
    run_max_per_client: Annotated[int, Meta(ge=0)] = 5
    # Issue 15: add-ons. Server images (scripts/base-images.sh builds them); plans are
    # "plan=memory MB" comma separated, the first is the default; backups go under
    # data_dir/addon-backups, a scheduled one per add-on every addon_backup_interval_hours,
    # the newest addon_backup_retention scheduled ones kept (manual ones and the final backup
    # of a removed add-on are kept until deleted with the Client).
    addon_postgres_image: str = "paastech/postgres:15"
    addon_redis_image: str = "paastech/redis:7"
    addon_plans: str = "mini=128,standard=512,premium=2048"
    addon_backup_interval_hours: Annotated[float, Meta(gt=0)] = 24
    addon_backup_retention: Annotated[int, Meta(ge=1)] = 7
    addon_restore_max_bytes: Annotated[int, Meta(ge=1)] = 1024 * 1024 * 1024

    def _fill_defaults(self, given: set[str]) -> None:
        # Unset TLS: on for a real base domain, off for localhost (no CA issues certificates).
        if "tls" not in given:
            domain = self.base_domain
            self.tls = not (domain == "localhost" or domain.endswith(".localhost"))
        # Unset with TLS on: app URLs point at the ingress's HTTPS port, not the HTTP one.
        if "public_port" not in given and self.tls:
            self.public_port = self.public_https_port or self.ingress_https_port

    def replace(self, **changes: Any) -> Settings:
        """A copy with these fields changed (as given: not converted or checked again)."""
        return msgspec.structs.replace(self, **changes)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite://{self.data_dir.resolve() / 'paastech.sqlite3'}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}/graphql"

    @property
    def registry_address(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def swarm_node_engine_urls(self) -> list[str]:
        """swarm_node_docker_urls, then the former swarm_stats_docker_urls, each once."""
        return list(dict.fromkeys([*self.swarm_node_docker_urls, *self.swarm_stats_docker_urls]))

    def resolved_registry_password(self) -> str:
        """The configured password, else the one scripts/registry.sh generated."""
        if self.registry_password:
            return self.registry_password
        path = self.data_dir / "registry" / "password"
        return path.read_text().strip() if path.exists() else ""

    def project_hostname(self, project_name: str) -> str:
        return f"{project_name}.{self.base_domain}"

    def app_url(self, hostname: str) -> str:
        """Public URL of an app host, as users reach it through the ingress."""
        scheme = "https" if self.tls else "http"
        default_port = 443 if self.tls else 80
        port = "" if self.public_port == default_port else f":{self.public_port}"
        return f"{scheme}://{hostname}{port}"

    def resolved_secret_key(self) -> str:
        """The configured key, else the one kept in the data dir (created on first use)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            write_private_file(path, secrets.token_urlsafe(48))
        return path.read_text().strip()


def write_private_file(path: Path, text: str, *, replace: bool = False) -> bool:
    """Write a 0600 file atomically: created under a temporary name with its final mode (never
    readable by others, even for an instant), then linked into place. Without ``replace`` an
    existing file wins (two processes starting together keep one key); returns whether written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            tmp.replace(path)
            return True
        try:
            os.link(tmp, path)  # fails if the file exists: no overwrite of a key in use
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
