"""The custom-domain routing table: which project each custom hostname routes to (issue 19).

A project's default hostname (`<project>.<base-domain>`) lives in its containers' Traefik labels
(backend/labels.py): it never changes. Custom domains do change, and routing is the ingress's
business, so they are *not* in the labels: a domain change rewrites this table and restarts
nothing. The API writes it (on every domain change and at start-up) as two files in
`<data-dir>/routing/`, each replaced atomically:

* `domains.json`: `{"domains": {"www.example.com": "hello.localhost", ...}}`, custom hostname ->
  the project's default hostname. The embedded ingress watches it (backend/ingress/server.py) and
  routes a custom hostname exactly as the default hostname it points to.
* `traefik-domains.yml`: the same for Traefik's file provider: one router per project whose rule
  lists its custom hostnames, pointing at the project's service from the Docker provider
  (`<project>@docker`).

`routed_domains()` is the one place that decides which domains route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from backend.settings import Settings, get_settings

DOMAINS_FILE = "domains.json"
TRAEFIK_FILE = "traefik-domains.yml"
# One writer at a time: each reads the database after the previous one wrote, so the last file
# written always has every committed change.
_lock = asyncio.Lock()


def routing_dir(settings: Settings | None = None) -> Path:
    s = settings or get_settings()
    return Path(s.routing_dir) if s.routing_dir else s.data_dir / "routing"


def domains_path(settings: Settings | None = None) -> Path:
    return routing_dir(settings) / DOMAINS_FILE


async def routed_domains() -> dict[str, str]:
    """Custom hostname -> project name, for every domain that routes: only verified ones
    (issue 12: control of the hostname is proven before it routes or gets a certificate)."""
    # Here, not at the top: the ingress reads this module's file and must not load the ORM.
    from backend.db.models import Domain

    rows = (
        await Domain.filter(verified_at__isnull=False)
        .prefetch_related("project")
        .order_by("hostname")
    )
    return {d.hostname: d.project.name for d in rows}


def traefik_config(domains: dict[str, str], settings: Settings) -> str:
    """Traefik dynamic configuration (YAML, written as JSON, which YAML reads) for `domains`."""
    by_project: dict[str, list[str]] = {}
    for host, project in sorted(domains.items()):
        by_project.setdefault(project, []).append(host)
    routers: dict[str, dict[str, Any]] = {}
    for project, hosts in sorted(by_project.items()):
        router: dict[str, Any] = {
            "rule": " || ".join(f"Host(`{h}`)" for h in hosts),
            "entryPoints": ["websecure" if settings.tls else "web"],
            "service": f"{project}@docker",
        }
        if settings.tls:
            router["tls"] = {"certResolver": settings.certresolver}
        routers[f"{project}-domains"] = router
    return json.dumps({"http": {"routers": routers}} if routers else {}, indent=2) + "\n"


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


async def publish(settings: Settings | None = None) -> dict[str, str]:
    """Rewrite the routing files from the database; the table written."""
    s = settings or get_settings()
    async with _lock:
        projects = await routed_domains()
        table = {host: s.project_hostname(project) for host, project in projects.items()}
        directory = routing_dir(s)
        directory.mkdir(parents=True, exist_ok=True)
        _write(directory / TRAEFIK_FILE, traefik_config(projects, s))
        _write(directory / DOMAINS_FILE, json.dumps({"domains": table}, indent=2, sort_keys=True))
    return table


def read_table(path: Path) -> dict[str, str] | None:
    """The custom hostname -> default hostname table from `domains.json`; None if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    domains = data.get("domains") if isinstance(data, dict) else None
    if not isinstance(domains, dict):
        return None
    return {str(k).lower(): str(v).lower() for k, v in domains.items()}
