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

    # Issue 14: runtime versions the buildpacks offer (.python-version/runtime.txt, engines.node),
    # "version=image" comma separated; scripts/base-images.sh builds the images. Without a
    # request, python_base_image/node_base_image are used.
    python_runtimes: str = "3.11=paastech/python:bookworm,3.13=paastech/python:trixie"
    node_runtimes: str = "18.19.0=paastech/node:bookworm"
    # The Procfile's `release:` command runs once per release before it goes live; longer fails it.
    release_timeout_seconds: int = 600

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite://{self.data_dir.resolve() / 'paastech.sqlite3'}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}/graphql"

    @property
    def registry_address(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

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
