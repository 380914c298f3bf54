"""Persistent volumes of a project (issue 15): a named Docker volume mounted at a path of the
owner's choosing into every replica of the chosen process types, kept across releases, rollbacks
and restarts. Adding or removing one is a config change: the resolver then releases the project
(Deployer.volumes_changed). Pomegranate creates the Docker volume on first use and removes it
once no container uses it; this module holds the rules and the rows.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend import labels as L
from backend import validation
from backend.db.columns import column
from backend.db.models import Addon, Client, Project, Volume
from backend.errors import NotFound, Unavailable, ValidationFailed
from backend.events import EventKind, get_bus, project_topic
from backend.pomegranate.procfile import validate_process_type
from backend.rpc.pomegranate_client import PomegranateClient
from backend.services import activity, quotas
from backend.services.projects import get_owned, live_application

DEFAULT_PROCESS_TYPES = ("web",)
MAX_PROCESS_TYPES = 10
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class VolumeView:
    """A volume with the space it uses (0 until its first container created it; -1: unknown)."""

    name: str
    mount_path: str
    process_types: list[str]
    size_bytes: int
    created_at: datetime


def docker_key(docker_name: str) -> str:
    """The volume key a Docker volume's name ends with (labels.volume_name)."""
    return docker_name.rpartition(".")[2]


def snapshot(volumes: list[Volume]) -> list[dict[str, object]]:
    """What a release keeps of the project's volumes (Application.volumes)."""
    return [
        {"name": v.name, "key": v.key, "mountPath": v.mount_path, "processTypes": v.process_types}
        for v in volumes
    ]


async def of_project(project: Project) -> list[Volume]:
    return await Volume.filter(project=project).order_by("name")


async def sizes(pomegranate: PomegranateClient, projects: list[str]) -> dict[str, int]:
    """Bytes in use per volume key, as Pomegranate reports them."""
    if not projects:
        return {}
    listed = await pomegranate.list_volumes(projects, sizes=True)
    return {docker_key(v.docker_name): v.size_bytes for v in listed}


async def list_volumes(pomegranate: PomegranateClient, project: Project) -> list[VolumeView]:
    rows = await of_project(project)
    try:
        used = await sizes(pomegranate, [project.name]) if rows else {}
        missing = 0  # not created yet: no container has mounted it
    except Unavailable:  # the list stays readable while Pomegranate restarts; sizes unknown
        used, missing = {}, -1
    return [
        VolumeView(
            v.name, v.mount_path, list(v.process_types), used.get(v.key, missing), v.created_at
        )
        for v in rows
    ]


async def used_mb(pomegranate: PomegranateClient, client: Client) -> float:
    """Space the Client's volumes use, in MB (the volume_mb quota): its projects' volumes and
    its add-ons' data volumes."""
    keys: set[str] = set(await column(Volume.filter(project__owner=client), "key"))
    total = 0
    if keys:
        names = await column(Project.filter(owner=client), "name")
        used = await sizes(pomegranate, list(names))
        total += sum(max(0, n) for k, n in used.items() if k in keys)
    addon_names = await column(Addon.filter(client=client), "name")
    if addon_names:
        addon_sizes = await pomegranate.addon_volume_sizes(list(addon_names))
        total += sum(max(0, n) for n in addon_sizes.values())
    return total / MB


def _default_name(mount_path: str, taken: set[str]) -> str:
    """A name from the path's last part (/app/uploads -> uploads), made unique in the project."""
    base = re.sub(r"[^a-z0-9]+", "-", mount_path.rsplit("/", 1)[-1].lower()).strip("-")[:24]
    if not base or not base[0].isalpha():
        base = f"v-{base}".strip("-") if base else "data"
    base = base.rstrip("-")
    name, n = base, 1
    while name in taken or len(name) < 2:
        n += 1
        name = f"{base}-{n}"
    return validation.volume_name(name)


async def _process_types(project: Project, process_types: list[str] | None) -> list[str]:
    if process_types is not None and not 1 <= len(process_types) <= MAX_PROCESS_TYPES:
        raise ValidationFailed(
            f"give 1 to {MAX_PROCESS_TYPES} process types (default: web)", field="processTypes"
        )
    wanted = list(dict.fromkeys(process_types or DEFAULT_PROCESS_TYPES))
    for t in wanted:
        try:
            validate_process_type(t)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="processTypes") from None
    live = await live_application(project)
    if live is not None:
        # `run`: one-off commands (issue 14), which every release can start.
        unknown = [t for t in wanted if t not in live.processes and t != L.ONEOFF_PROCESS]
        if unknown:
            known = ", ".join(sorted(live.processes)) or "none"
            raise ValidationFailed(
                f"no process type {', '.join(unknown)} in v{live.number} (it has: {known})",
                field="processTypes",
            )
    return wanted


async def add_volume(
    pomegranate: PomegranateClient,
    client: Client,
    project_name: str,
    mount_path: str,
    process_types: list[str] | None = None,
    name: str | None = None,
) -> Volume:
    """Refuses (VALIDATION, with the field) a bad or system path, a path already used or nested
    in another volume's, an unknown process type, a name taken, or a quota reached; then nothing
    changes."""
    project = await get_owned(client, project_name)
    path = validation.mount_path(mount_path)
    existing = await of_project(project)
    if name is not None:
        name = validation.volume_name(name)
        if any(v.name == name for v in existing):
            raise ValidationFailed(
                f"{project.name} has a volume named {name} already", field="name"
            )
    else:
        name = _default_name(path, {v.name for v in existing})
    for v in existing:
        if path == v.mount_path or path.startswith(v.mount_path + "/"):
            raise ValidationFailed(
                f"{path} is in volume {v.name} ({v.mount_path})", field="mountPath"
            )
        if v.mount_path.startswith(path + "/"):
            raise ValidationFailed(
                f"{path} would hide volume {v.name} ({v.mount_path})", field="mountPath"
            )
    types = await _process_types(project, process_types)
    limit = await quotas.limit_of(client.id, quotas.VOLUMES_PER_PROJECT)
    if len(existing) + 1 > limit:
        raise ValidationFailed(
            quotas.refusal_message(quotas.VOLUMES_PER_PROJECT, limit, len(existing)),
            field="project",
        )
    await quotas.check_volume_space(client.id, await used_mb(pomegranate, client))
    try:
        async with in_transaction():
            volume = await Volume.create(
                project=project,
                name=name,
                key=secrets.token_hex(6),
                mount_path=path,
                process_types=types,
            )
    except IntegrityError as exc:  # a concurrent add of the same name or path
        raise ValidationFailed(
            f"{project.name} has a volume {name} or at {path}", field="name"
        ) from exc
    await _changed(project, f"volume {name} added at {path} ({', '.join(types)})")
    await activity.record(
        client, "volume.add", project=project, name=name, mountPath=path, processTypes=types
    )
    return volume


async def remove_volume(client: Client, project_name: str, name: str, confirm: str) -> Volume:
    """Only with ``confirm`` equal to the project's name, as deleting the project: the data goes."""
    project = await get_owned(client, project_name)
    found = None
    if isinstance(name, str) and validation.VOLUME_NAME_RE.fullmatch(name):
        found = await Volume.get_or_none(project=project, name=name)
    if found is None:
        raise NotFound(f"volume {str(name)[:30]!r} not found on {project.name}", field="name")
    if confirm != project.name:
        raise ValidationFailed(
            f"removing volume {found.name} deletes its data: confirm with the project's name "
            f"({project.name})",
            field="confirm",
        )
    await found.delete()
    await _changed(project, f"volume {found.name} removed ({found.mount_path})")
    await activity.record(
        client, "volume.remove", project=project, name=found.name, mountPath=found.mount_path
    )
    return found


async def _changed(project: Project, message: str) -> None:
    await get_bus().publish(
        project_topic(project.id),
        EventKind.SETTINGS_CHANGED,
        {"project": project.name, "message": message},
    )
