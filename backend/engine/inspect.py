"""Listing and inspecting containers and volumes: the engine's JSON, or None when the object is
missing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiodocker
from aiodocker.containers import DockerContainer
from aiodocker.exceptions import DockerError
from aiodocker.volumes import DockerVolume

from backend.engine.engine import engine_get_json


async def inspect_container(docker: aiodocker.Docker, container: str) -> dict[str, Any] | None:
    """The container's inspect data (by id, id prefix or name); None when it does not exist."""
    try:
        return await docker.containers.container(container).show()
    except DockerError as exc:
        if exc.status == 404:
            return None
        raise


async def inspect_containers(
    docker: aiodocker.Docker, label_filters: Sequence[str]
) -> list[dict[str, Any]]:
    """Inspect data of every container (all states) carrying ``label_filters``; one that
    vanished between the listing and its inspect is left out."""
    found = await docker.containers.list(all=True, filters={"label": list(label_filters)})
    datas = await asyncio.gather(*(inspect_container(docker, c.id) for c in found))
    return [d for d in datas if d is not None]


async def list_containers(
    docker: aiodocker.Docker, label_filters: Sequence[str]
) -> list[dict[str, Any]]:
    """The engine's listing of every container (all states) carrying ``label_filters``: one
    call, no inspect. Each entry has Id, Names, Image, State, Ports, Labels and
    NetworkSettings.Networks; not the exit code, OOM flag, start time or restart count."""
    found = await engine_get_json(
        docker, "containers/json", {"all": "1", "filters": {"label": list(label_filters)}}
    )
    return list(found or [])


def listed_name(listed: DockerContainer | dict[str, Any]) -> str:
    """The name of a container from a listing (the engine lists names with a leading /)."""
    try:
        names = listed["Names"]
    except KeyError:
        names = None
    return str((names or ["?"])[0]).lstrip("/")


async def inspect_volume(docker: aiodocker.Docker, name: str) -> dict[str, Any] | None:
    """The volume called exactly ``name``; None when there is none."""
    try:
        data: dict[str, Any] = await DockerVolume(docker, name).show()
    except DockerError as exc:
        if exc.status == 404:
            return None
        raise
    return data if data.get("Name") == name else None


async def volume_sizes(docker: aiodocker.Docker) -> dict[str, int]:
    """Bytes in use per volume, from the engine's disk usage report (it walks every volume: call
    it only when there is something to report); -1 where the engine does not say."""
    data = await engine_get_json(docker, "system/df")
    return {
        v["Name"]: int((v.get("UsageData") or {}).get("Size", -1))
        for v in (data or {}).get("Volumes") or []
    }


def parse_time(value: str | None) -> datetime | None:
    """An engine timestamp (RFC 3339 with nanoseconds); None for an empty or zero one."""
    if not value or value.startswith("0001-01-01"):
        return None
    # Python takes at most microseconds.
    match = re.match(r"^(.*?T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$", value)
    if not match:
        return None
    base, frac, zone = match.groups()
    text = base + (f".{frac[:6]}" if frac else "") + ("+00:00" if zone in (None, "Z") else zone)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
