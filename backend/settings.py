"""All platform settings in one place, read from the environment with the PAASTECH_ prefix."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAASTECH_", extra="ignore")

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

    session_token_days: int = 30
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    login_failure_window_seconds: int = 900

    # Addresses of reverse proxies (Traefik) whose X-Forwarded-For the API trusts, comma
    # separated; empty: none, the peer address is the client (login rate limits use it).
    trusted_proxies: str = ""

    max_query_depth: int = 10
    max_query_tokens: int = 2000
    max_request_bytes: int = 1_000_000

    applications_page_max: int = Field(default=100, ge=1)

    # Pomegranate (deployment manager). Base images are built locally by scripts/base-images.sh.
    docker_url: str = ""  # empty: the local engine (DOCKER_HOST or /var/run/docker.sock)
    docker_network: str = "paastech"
    # This installation's name on the Docker engine (label paastech.instance).
    instance: str = "paastech"
    python_base_image: str = "paastech/python:bookworm"
    node_base_image: str = "paastech/node:bookworm"
    static_base_image: str = "paastech/busybox:latest"
    default_port: int = 5000
    default_memory_mb: int = 256
    default_cpu: float = 0.5
    pids_limit: int = 256
    build_timeout_seconds: int = 600
    health_check_timeout_seconds: float = 30.0
    images_kept_per_project: int = 5
    max_concurrent_builds: int = 2
    reconcile_interval_seconds: float = 30.0
    max_source_bytes: int = 512 * 1024 * 1024
    build_log_line_max: int = 4000
    tls: bool = False
    certresolver: str = "letsencrypt"

    # Issue 11: tenant isolation at run time (docs/architecture.md, "Tenant isolation").
    # Each project gets a bridge network of its own with an explicit subnet carved from this pool
    # (Docker's default pools hold only ~30 bridges); /26 leaves room for 60 containers, i.e. two
    # releases side by side during a switch.
    project_network_pool: str = "10.210.0.0/16"
    project_network_prefix: int = Field(default=26, ge=16, le=29)
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

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite://{self.data_dir.resolve() / 'paastech.sqlite3'}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}/graphql"

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
            # O_EXCL: two processes starting together must not write two different keys.
            try:
                with path.open("x") as fh:
                    fh.write(secrets.token_urlsafe(48))
                path.chmod(0o600)
            except FileExistsError:
                pass
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
