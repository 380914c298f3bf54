"""The one home of the container label format.

Every container Pomegranate starts carries two groups of labels:

* ownership labels (``paastech.*``): which project, application (release number), process type
  and replica the container belongs to. Reconciliation and event handling read them back with
  :func:`parse_labels`.
* routing labels (``traefik.*``), for ``web`` processes only, in Traefik v3's documented Docker
  provider format. Traefik reads them in production; the embedded ingress reads the same labels
  with :func:`routes_from_labels`. Every other process type gets ``traefik.enable=false``.

The router and the service are both named after the project. Project names are lowercase DNS
labels, so they are valid Traefik router/service names. Containers of every release of a project
share the same router and service: Traefik merges same-named services of several containers into
one load balancer, which is what lets an old and a new release serve side by side during a switch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

MANAGED = "paastech.managed"
MANAGED_VALUE = "true"
PROJECT = "paastech.project"
APPLICATION = "paastech.application"
PROCESS = "paastech.process"
REPLICA = "paastech.replica"
# Which PaaSTech installation owns the object: several can share one Docker engine (and the
# tests run many), and each manages, routes and reconciles only its own.
INSTANCE = "paastech.instance"
# On a container started with more CPU than its limit (the startup boost): the limit, in
# nano-CPUs, it is set to once healthy (backend/pomegranate/docker_runtime.py).
CPU_LIMIT = "paastech.cpu-limit"
DEFAULT_INSTANCE = "paastech"

# For Docker API filters, e.g. {"label": [MANAGED_FILTER]}.
MANAGED_FILTER = f"{MANAGED}={MANAGED_VALUE}"


def instance_filters(instance: str) -> list[str]:
    """Docker label filters selecting what one installation manages."""
    return [MANAGED_FILTER, f"{INSTANCE}={instance}"]


# Docker object names (issue 11). "." separates the fields: project names are DNS labels and
# process types match [a-z][a-z0-9_-]*, so neither can contain it and no project or Procfile can
# produce the name of another project's container (with "-" it could: project "blog" with process
# "7-prod-web" vs project "blog-7-prod"). The instance comes first: two installations sharing one
# engine never share a name.
NAME_SEPARATOR = "."


def container_name(
    project: str, application: int, process_type: str, replica: int, *, instance: str
) -> str:
    return NAME_SEPARATOR.join((instance, project, str(application), process_type, str(replica)))


def legacy_container_name(project: str, application: int, process_type: str, replica: int) -> str:
    """The name containers had before issue 11; reconcile replaces them (see reconciler.py)."""
    return f"paastech-{project}-{application}-{process_type}-{replica}"


def network_name(project: str, *, instance: str) -> str:
    """The project's own bridge network: its containers, and nobody else's, join it."""
    return f"{instance}{NAME_SEPARATOR}{project}"


def volume_name(project: str, volume: str, key: str, *, instance: str) -> str:
    """A project volume's Docker volume (issue 15): <instance>.<project>.<volume>.<key>. ``key``
    is random per volume, so a volume removed and added again under the same name never finds
    the old data (its removal may still be pending)."""
    return NAME_SEPARATOR.join((instance, project, volume, key))


# A Docker volume's labels: ownership_labels(project) and the project volume's name.
VOLUME = "paastech.volume"


def volume_labels(project: str, volume: str, *, instance: str) -> dict[str, str]:
    return {**ownership_labels(project, instance=instance), VOLUME: volume}


WEB_PROCESS = "web"
HSTS_MIDDLEWARE_SUFFIX = "-hsts"  # the project's Traefik headers middleware (issue 21)
# The Procfile process type run once per release, before its web processes (issue 14); never
# scaled, never routed.
RELEASE_PROCESS = "release"
HEALTHCHECK_INTERVAL = "5s"
# One-off commands (issue 14, `paastech run`): containers of the live release's image with this
# label, process type ONEOFF_PROCESS and a random replica number (ONEOFF_FIRST_REPLICA and up,
# far above any scale, so never the name of a Procfile process's replica). Releases, switches
# and reconciliation leave a running one-off to the session that started it.
ONEOFF = "paastech.oneoff"
ONEOFF_PROCESS = "run"
ONEOFF_FIRST_REPLICA = 100_000
# Add-on servers (issue 15): their container, volume and own network carry the add-on's name
# (and INSTANCE) but not MANAGED: they are no project's processes, so releases, reconciliation
# of projects and the event watcher leave them alone.
ADDON = "paastech.addon"
ADDON_KIND = "paastech.addon.kind"
ADDON_CONFIG = "paastech.addon.config"  # digest of what the container was created with


def addon_object_name(addon: str, *, instance: str) -> str:
    """The add-on's container, volume and own network name: <instance>.addon.<name> (three
    fields: never the name of a project's container, which has five)."""
    return NAME_SEPARATOR.join((instance, "addon", addon))


def is_oneoff(labels: Mapping[str, str] | None) -> bool:
    return labels is not None and labels.get(ONEOFF) == MANAGED_VALUE


# A lowercase DNS label: safe as a Traefik router/service name and in container names.
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# A hostname made of DNS labels (no backticks, spaces or other characters that would break a rule).
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_PROCESS = re.compile(r"^[a-z][a-z0-9_-]*$")
_HOST_RULE = re.compile(r"Host\(`([^`]+)`\)")


@dataclass(frozen=True, slots=True)
class Ownership:
    """Who a container belongs to, as read back from its labels."""

    project: str
    application: int
    process: str
    replica: int


def ownership_labels(
    project: str,
    application: int | None = None,
    process_type: str | None = None,
    replica: int | None = None,
    *,
    instance: str = DEFAULT_INSTANCE,
) -> dict[str, str]:
    """The ``paastech.*`` labels. Images get project + application; containers get all four."""
    labels = {MANAGED: MANAGED_VALUE, INSTANCE: instance, PROJECT: project}
    if application is not None:
        labels[APPLICATION] = str(application)
    if process_type is not None:
        labels[PROCESS] = process_type
    if replica is not None:
        labels[REPLICA] = str(replica)
    return labels


def container_labels(
    project: str,
    application: int,
    process_type: str,
    replica: int,
    hostnames: list[str],
    port: int,
    *,
    network: str,
    tls: bool,
    certresolver: str,
    health_path: str | None,
    instance: str = DEFAULT_INSTANCE,
    hsts_seconds: int = 0,
) -> dict[str, str]:
    """All labels of one container: ownership, plus Traefik routing for ``web`` processes.

    Raises ValueError on a project, process type or hostname that would produce unsafe labels,
    and for a ``web`` process without any hostname.
    """
    if not _DNS_LABEL.match(project):
        raise ValueError(f"invalid project name for labels: {project!r}")
    if not _PROCESS.match(process_type):
        raise ValueError(f"invalid process type: {process_type!r}")
    if application < 1 or replica < 1:
        raise ValueError("application and replica numbers start at 1")
    labels = ownership_labels(project, application, process_type, replica, instance=instance)
    if process_type != WEB_PROCESS:
        labels["traefik.enable"] = "false"
        return labels

    if not hostnames:
        raise ValueError("a web process needs at least one hostname")
    for host in hostnames:
        if not _HOSTNAME.match(host):
            raise ValueError(f"invalid hostname: {host!r}")
    if not 0 < port < 65536:
        raise ValueError(f"invalid port: {port}")
    if health_path is not None and (not health_path.startswith("/") or "`" in health_path):
        raise ValueError(f"health check path must start with '/': {health_path!r}")

    router = f"traefik.http.routers.{project}"
    service = f"traefik.http.services.{project}"
    labels["traefik.enable"] = "true"
    labels["traefik.docker.network"] = network
    labels[f"{router}.rule"] = " || ".join(f"Host(`{host}`)" for host in hostnames)
    labels[f"{router}.entrypoints"] = "websecure" if tls else "web"
    if tls:
        labels[f"{router}.tls.certresolver"] = certresolver
    labels[f"{router}.service"] = project
    labels[f"{service}.loadbalancer.server.port"] = str(port)
    if health_path:
        labels[f"{service}.loadbalancer.healthcheck.path"] = health_path
        labels[f"{service}.loadbalancer.healthcheck.interval"] = HEALTHCHECK_INTERVAL
    if hsts_seconds > 0:
        # Traefik's headers middleware adds Strict-Transport-Security to HTTPS answers only;
        # the embedded ingress reads the same label (hsts_from_labels).
        middleware = f"{project}{HSTS_MIDDLEWARE_SUFFIX}"
        labels[f"traefik.http.middlewares.{middleware}.headers.stsSeconds"] = str(hsts_seconds)
        labels[f"{router}.middlewares"] = middleware
    return labels


def parse_labels(labels: Mapping[str, str] | None) -> Ownership | None:
    """Ownership of a container from its labels; None when it is not a well-formed one of ours."""
    if not labels or labels.get(MANAGED) != MANAGED_VALUE:
        return None
    try:
        project = labels[PROJECT]
        application = int(labels[APPLICATION])
        process = labels[PROCESS]
        replica = int(labels[REPLICA])
    except (KeyError, ValueError):
        return None
    if not project or not process or application < 1 or replica < 1:
        return None
    return Ownership(project=project, application=application, process=process, replica=replica)


def routes_from_labels(labels: Mapping[str, str] | None) -> tuple[list[str], int] | None:
    """(hostnames, container port) of a routed container, parsed back from its Traefik labels.

    None when the container is not routed (``traefik.enable`` not true, or labels incomplete).
    """
    if not labels or labels.get("traefik.enable") != "true":
        return None
    project = labels.get(PROJECT)
    if not project:
        return None
    rule = labels.get(f"traefik.http.routers.{project}.rule")
    port = labels.get(f"traefik.http.services.{project}.loadbalancer.server.port")
    if not rule or not port:
        return None
    hostnames = _HOST_RULE.findall(rule)
    try:
        port_number = int(port)
    except ValueError:
        return None
    if not hostnames:
        return None
    return hostnames, port_number


def hsts_from_labels(labels: Mapping[str, str] | None) -> int:
    """max-age of the project's HSTS header (its Traefik headers middleware); 0: none."""
    if not labels or not (project := labels.get(PROJECT)):
        return 0
    middleware = f"{project}{HSTS_MIDDLEWARE_SUFFIX}"
    if labels.get(f"traefik.http.routers.{project}.middlewares") != middleware:
        return 0
    seconds = labels.get(f"traefik.http.middlewares.{middleware}.headers.stsSeconds", "0")
    try:
        return max(0, int(seconds))
    except ValueError:
        return 0


def health_path_from_labels(labels: Mapping[str, str] | None) -> str | None:
    """The Traefik health-check path of a routed container, if any."""
    if not labels:
        return None
    project = labels.get(PROJECT)
    if not project:
        return None
    return labels.get(f"traefik.http.services.{project}.loadbalancer.healthcheck.path")
