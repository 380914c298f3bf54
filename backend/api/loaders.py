"""Per-request DataLoaders: one SQL query for a field asked of many objects (no N+1).

They return plain application rows (as the database gives them; types.py converts them:
ApplicationType.of_row), not models: a listing of 1,000 projects reads 3,000 releases, and
building a model per row was most of its time (issue 17). Each key names the columns its field
needs (release_columns.py); a batch reads the union of its keys' columns.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from tortoise import connections

from backend.api.release_columns import Columns
from backend.db.rows import APPLICATION_COLUMNS

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Row = dict[str, Any]
PageKey = tuple[int, int, int, Columns]  # (project id, first, offset, columns)
LiveKey = tuple[int, Columns]  # (project id, columns)


async def load(loader: DataLoader[K, V], key: K) -> V:
    """``loader.load(key)``, shielded. The loader's future for a key is shared by every field that
    asks for it, and graphql-core cancels a field's siblings when one of them fails (e.g.
    `processes` while Pomegranate is down). Unshielded, that cancellation cancels the shared
    future under a field of another branch too, and the request ends in a 500, not an error."""
    return await asyncio.shield(loader.load(key))


def loaded(loader: DataLoader[K, V], key: K) -> V | Awaitable[V]:
    """The value if this request has loaded it already (see `prefetch`), else ``load``.

    A resolver returning it stays synchronous for the objects of a prefetched list: no
    coroutine, shield and future per object for graphql-core to await (issue 17)."""
    future = loader.cache_map.get(key)
    if (
        future is not None
        and future.done()
        and not future.cancelled()
        and future.exception() is None
    ):
        return future.result()
    return load(loader, key)


def _marks(count: int) -> list[str]:
    """`count` query placeholders in the default connection's dialect."""
    postgres = connections.get("default").capabilities.dialect == "postgres"
    return [f"${i + 1}" if postgres else "?" for i in range(count)]


def _select(keys: list[Any]) -> str:
    """The union of the keys' columns (the last part of each key), for a SELECT list."""
    wanted = {column for key in keys for column in key[-1]}
    return ", ".join(c for c in APPLICATION_COLUMNS if c in wanted)


async def _applications_page(keys: list[PageKey]) -> list[list[Row]]:
    """keys: (project_id, first, offset, columns) -> that page of releases, newest first.

    One windowed query for every project of the request (SQLite >= 3.25 and PostgreSQL).
    """
    ids = sorted({k[0] for k in keys})
    upper = max(first + offset for _, first, offset, _ in keys)
    marks = _marks(len(ids) + 1)
    columns = _select(keys)
    sql = (
        f"SELECT {columns} FROM (SELECT {columns}, ROW_NUMBER() OVER "
        "(PARTITION BY project_id ORDER BY number DESC) AS rn FROM application "
        f"WHERE project_id IN ({', '.join(marks[:-1])})) ranked WHERE rn <= {marks[-1]} "
        "ORDER BY project_id, number DESC"
    )
    rows = await connections.get("default").execute_query_dict(sql, [*ids, upper])
    by_project: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_project[row["project_id"]].append(row)
    return [by_project[pid][offset : offset + first] for pid, first, offset, _ in keys]


async def _live_application(keys: list[LiveKey]) -> list[Row | None]:
    from backend.services.applications.status import LIVE

    ids = sorted({k[0] for k in keys})
    marks = _marks(len(ids) + len(LIVE))
    sql = (
        f"SELECT {_select(keys)} FROM application"
        f" WHERE project_id IN ({', '.join(marks[: len(ids)])})"
        f" AND status IN ({', '.join(marks[len(ids) :])}) ORDER BY number"
    )
    params = [*ids, *(s.value for s in LIVE)]
    rows = await connections.get("default").execute_query_dict(sql, params)
    live = {row["project_id"]: row for row in rows}  # highest number wins
    return [live.get(pid) for pid, _ in keys]


@dataclass
class Loaders:
    applications: DataLoader[PageKey, list[Row]] = field(
        default_factory=lambda: DataLoader(load_fn=_applications_page)
    )
    live_application: DataLoader[LiveKey, Row | None] = field(
        default_factory=lambda: DataLoader(load_fn=_live_application)
    )
    # release_columns.columns_for's memo: the columns of each release field of the request.
    columns: dict[tuple[int, ...], Columns] = field(default_factory=dict)
