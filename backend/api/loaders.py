"""Per-request DataLoaders: one SQL query for a field asked of many objects (no N+1)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from strawberry.dataloader import DataLoader
from tortoise import connections

from backend.db.models import Application

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


async def load(loader: DataLoader[K, V], key: K) -> V:
    """``loader.load(key)``, shielded. The loader's future for a key is shared by every field that
    asks for it, and graphql-core cancels a field's siblings when one of them fails (e.g.
    `processes` while Pomegranate is down). Unshielded, that cancellation cancels the shared
    future under a field of another branch too, and the request ends in a 500, not an error."""
    return await asyncio.shield(loader.load(key))


async def _applications_page(keys: list[tuple[int, int, int]]) -> list[list[Application]]:
    """keys: (project_id, first, offset) -> that page of releases, newest first.

    One windowed query for every project of the request (SQLite >= 3.25 and PostgreSQL).
    """
    conn = connections.get("default")
    ids = sorted({k[0] for k in keys})
    upper = max(first + offset for _, first, offset in keys)
    dialect = conn.capabilities.dialect
    marks = [f"${i + 1}" if dialect == "postgres" else "?" for i in range(len(ids) + 1)]
    sql = (
        "SELECT id FROM (SELECT id, ROW_NUMBER() OVER "
        "(PARTITION BY project_id ORDER BY number DESC) AS rn FROM application "
        f"WHERE project_id IN ({', '.join(marks[:-1])})) ranked WHERE rn <= {marks[-1]}"
    )
    rows = await conn.execute_query_dict(sql, [*ids, upper])
    apps = await Application.filter(id__in=[r["id"] for r in rows]).order_by("-number")
    by_project: dict[int, list[Application]] = defaultdict(list)
    for app in apps:
        by_project[app.project_id].append(app)  # type: ignore[attr-defined]
    return [by_project[pid][offset : offset + first] for pid, first, offset in keys]


async def _live_application(project_ids: list[int]) -> list[Application | None]:
    from backend.services.applications.status import LIVE

    apps = await Application.filter(project_id__in=project_ids, status__in=LIVE).order_by("number")
    live = {app.project_id: app for app in apps}  # type: ignore[attr-defined]  # highest wins
    return [live.get(pid) for pid in project_ids]


@dataclass
class Loaders:
    applications: DataLoader[tuple[int, int, int], list[Application]] = field(
        default_factory=lambda: DataLoader(load_fn=_applications_page)
    )
    live_application: DataLoader[int, Application | None] = field(
        default_factory=lambda: DataLoader(load_fn=_live_application)
    )
