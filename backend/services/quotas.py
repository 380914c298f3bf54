"""Quotas per Client (issue 11): what one Client may hold or use, so that no tenant can starve the
others. Every limit comes from Settings (``quota_<name>``, generous defaults) unless an
administrator set an override for that Client (table client_quota, `python -m backend quota`).

A refusal names the quota, its limit and the current usage, as a VALIDATION error (a holding:
projects, replicas, memory, CPU, repository and image size) or a RATE_LIMITED one (a rate that
frees up with time: build minutes per hour). Build log lines and the runtime log rate are not
refused: what goes beyond them is dropped, with a line saying so.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backend import repos
from backend.db.models import (
    Addon,
    Application,
    BuildLog,
    Client,
    ClientQuota,
    Project,
    StatusChange,
    Volume,
)
from backend.db.models import ApplicationStatus as S
from backend.errors import NotFound, RateLimited, ValidationFailed
from backend.settings import Settings, get_settings

PROJECTS = "projects"
REPLICAS = "replicas"
MEMORY_MB = "memory_mb"
CPU = "cpu"
BUILD_MINUTES = "build_minutes_per_hour"
REPOSITORY_MB = "repository_mb"
IMAGE_MB = "image_mb_per_project"
BUILD_LOG_LINES = "build_log_lines"
RUNTIME_LOG_RATE = "runtime_log_lines_per_second"
VOLUMES_PER_PROJECT = "volumes_per_project"
VOLUME_MB = "volume_mb"
ADDONS = "addons"  # add-ons held (issue 15); their memory is the plan's
NAMES = (
    PROJECTS,
    REPLICAS,
    MEMORY_MB,
    CPU,
    BUILD_MINUTES,
    REPOSITORY_MB,
    IMAGE_MB,
    BUILD_LOG_LINES,
    RUNTIME_LOG_RATE,
    VOLUMES_PER_PROJECT,
    VOLUME_MB,
    ADDONS,
)
MB = 1024 * 1024
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Quota:
    name: str
    limit: float
    used: float


def _figure(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}".rstrip("0")


def refusal_message(name: str, limit: float, used: float, wanted: float | None = None) -> str:
    """The one wording of a refusal: the quota, its limit, the usage (and what was asked)."""
    text = f"quota {name} exceeded: limit {_figure(limit)}, in use {_figure(used)}"
    if wanted is not None:
        text += f", this would make {_figure(wanted)}"
    return text


async def limit_of(client_id: int, name: str, settings: Settings | None = None) -> float:
    override = await ClientQuota.get_or_none(client_id=client_id, name=name)
    if override is not None:
        return override.limit
    return float(getattr(settings or get_settings(), f"quota_{name}"))


async def set_override(username: str, name: str, limit: float | None) -> None:
    """An administrator's override (None: back to the platform default)."""
    if name not in NAMES:
        raise ValidationFailed(f"unknown quota {name!r}; quotas: {', '.join(NAMES)}", field="name")
    if limit is not None and (not math.isfinite(limit) or limit < 0):
        raise ValidationFailed("a quota limit is a number >= 0", field="limit")
    client = await Client.get_or_none(username=username)
    if client is None:
        raise NotFound(f"no client {username!r}", field="username")
    if limit is None:
        await ClientQuota.filter(client=client, name=name).delete()
        return
    await ClientQuota.update_or_create(defaults={"limit": limit}, client=client, name=name)


# ---------------------------------------------------------------------------------- usage


def _scale(project: Project) -> int:
    return sum(int(n) for n in (project.replicas or {}).values())


def runtime_totals(projects: list[Project], settings: Settings) -> tuple[int, float, float]:
    """(replicas, memory MB, CPU) the projects' scales ask for, with the platform defaults."""
    replicas = memory = cpu = 0.0
    for p in projects:
        n = _scale(p)
        replicas += n
        memory += n * (p.memory_mb or settings.default_memory_mb)
        cpu += n * (p.cpu or settings.default_cpu)
    return int(replicas), memory, cpu


async def build_minutes_used(client_id: int, now: datetime | None = None) -> float:
    """Minutes the Client's builds ran in the last hour (a build still running counts to now)."""
    now = now or datetime.now(UTC)
    since = now - HOUR
    timeout = timedelta(seconds=get_settings().build_timeout_seconds)
    changes = await StatusChange.filter(
        application__project__owner_id=client_id, at__gte=since - timeout
    ).order_by("application_id", "id")
    seconds = 0.0
    for i, change in enumerate(changes):
        if change.status != S.BUILDING:
            continue
        following = changes[i + 1] if i + 1 < len(changes) else None
        same_app = following is not None and following.application_id == change.application_id
        end = following.at if same_app and following is not None else now
        start = max(change.at, since)
        seconds += max(0.0, (min(end, now) - start).total_seconds())
    return seconds / 60


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed meanwhile (git gc, a finished quarantine)
    return total


async def repository_mb(project: str) -> float:
    """Size of the project's bare repository on disk, objects of a push in progress included
    (git keeps them in a quarantine directory inside the repository until the hook accepts)."""
    path = repos.repo_path(project)
    return await asyncio.to_thread(_tree_bytes, path) / MB if path.exists() else 0.0


async def usage(
    client: Client, settings: Settings | None = None, volume_mb: float = -1.0
) -> list[Quota]:
    """``volume_mb``: the space the Client's volumes use, which only Pomegranate knows (the
    caller asks it: services/volumes.used_mb); -1 when unknown."""
    s = settings or get_settings()
    projects = await Project.filter(owner=client)
    replicas, memory, cpu = runtime_totals(projects, s)
    repo_sizes = [await repository_mb(p.name) for p in projects]
    last_build = (
        await Application.filter(project__owner=client, image__not_isnull=True)
        .order_by("-created_at")
        .first()
    )
    log_lines = await BuildLog.filter(application=last_build).count() if last_build else 0
    used = {
        PROJECTS: len(projects),
        REPLICAS: replicas,
        MEMORY_MB: memory,
        CPU: cpu,
        BUILD_MINUTES: round(await build_minutes_used(client.id), 2),
        REPOSITORY_MB: round(max(repo_sizes, default=0.0), 2),
        IMAGE_MB: 0.0,  # per image: checked when each image is built
        BUILD_LOG_LINES: log_lines,  # of the last build
        RUNTIME_LOG_RATE: 0.0,  # per stream: enforced while streaming
        VOLUMES_PER_PROJECT: await _most_volumes(client),
        VOLUME_MB: round(volume_mb, 2),
        ADDONS: await Addon.filter(client=client).count(),
    }
    return [Quota(name, await limit_of(client.id, name, s), float(used[name])) for name in NAMES]


async def _most_volumes(client: Client) -> int:
    counts = await Volume.filter(project__owner=client).values_list("project_id", flat=True)
    return max((counts.count(p) for p in set(counts)), default=0)


# ---------------------------------------------------------------------------------- checks


async def check_volume_space(client_id: int, used_mb: float, field: str = "mountPath") -> None:
    """A new volume (or add-on, which has one) is refused once the Client's volumes use their
    volume_mb (checked when one is added: the engine's local volumes have no size limit of
    their own, so this is a soft limit: what is there may grow past it)."""
    limit = await limit_of(client_id, VOLUME_MB)
    if used_mb >= limit:
        raise ValidationFailed(refusal_message(VOLUME_MB, limit, round(used_mb, 2)), field=field)


async def check_new_project(client: Client) -> None:
    limit = await limit_of(client.id, PROJECTS)
    used = await Project.filter(owner=client).count()
    if used + 1 > limit:
        raise ValidationFailed(refusal_message(PROJECTS, limit, used), field="name")


async def check_runtime(client_id: int, changed: Project) -> None:
    """Refuse a scale or resources change of ``changed`` (unsaved) that would take the Client's
    replicas, memory or CPU over their limits. A change that lowers usage always passes."""
    settings = get_settings()
    others = await Project.filter(owner_id=client_id).exclude(id=changed.id)
    before = runtime_totals([*others, await Project.get(id=changed.id)], settings)
    after = runtime_totals([*others, changed], settings)
    for name, field, old, new in zip(
        (REPLICAS, MEMORY_MB, CPU), ("replicas", "memoryMb", "cpu"), before, after, strict=True
    ):
        limit = await limit_of(client_id, name, settings)
        if new > limit and new > old:
            raise ValidationFailed(refusal_message(name, limit, old, new), field=field)


async def check_build_minutes(client_id: int) -> None:
    limit = await limit_of(client_id, BUILD_MINUTES)
    used = await build_minutes_used(client_id)
    if used >= limit:
        # Frees up as the oldest build minute of the window leaves it: retry in at most an hour.
        raise RateLimited(
            refusal_message(BUILD_MINUTES, limit, round(used, 2)),
            retry_after=max(60, int((used - limit + 1) * 60)),
        )


async def check_image(client_id: int, image_bytes: int) -> None:
    """A built image larger than the Client's image_mb_per_project fails its release (raised
    as DeployFailed by the caller's type: the build log shows the reason)."""
    from backend.rpc.pomegranate_client import DeployFailed

    limit = await limit_of(client_id, IMAGE_MB)
    size = round(image_bytes / MB, 2)
    if size > limit:
        raise DeployFailed(refusal_message(IMAGE_MB, limit, size))


async def check_repository(client_id: int, project: str) -> None:
    limit = await limit_of(client_id, REPOSITORY_MB)
    used = await repository_mb(project)
    if used > limit:
        raise ValidationFailed(
            refusal_message(REPOSITORY_MB, limit, round(used, 2)), field="project"
        )


class LogRate:
    """The runtime log rate of one stream: at most ``limit`` lines per one-second window; the
    rest is dropped, and the first drop of a window is announced once (``admit`` -> "notice")."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.window = -1
        self.count = 0

    def admit(self) -> str:
        """ "pass", "notice" (drop this line, say that lines are dropped) or "drop"."""
        window = int(self.clock())
        if window != self.window:
            self.window, self.count = window, 0
        self.count += 1
        if self.count <= self.limit:
            return "pass"
        return "notice" if self.count == int(self.limit) + 1 else "drop"

    def notice(self) -> str:
        return (
            f"[paastech] quota {RUNTIME_LOG_RATE} reached: limit {_figure(self.limit)} lines "
            "per second; lines beyond it are dropped for the rest of this second"
        )
