"""One column of a query as a flat list: what Tortoise's ``values_list(field, flat=True)`` returns.

Tortoise's annotations type values_list as tuples whatever ``flat`` says: this is the one place
that states the flat shape, so the callers stay checked."""

from __future__ import annotations

from typing import Any, cast

from tortoise.queryset import QuerySet


async def column(query: QuerySet[Any], field: str) -> list[Any]:
    return cast(list[Any], await query.values_list(field, flat=True))
