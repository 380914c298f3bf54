"""What the API answers about a project's metrics (the resolvers stay thin over this)."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.db.models import Client, Project
from backend.errors import ValidationFailed
from backend.metrics import store
from backend.services import projects


def check_range(range_name: str) -> str:
    if range_name not in store.RANGES:
        raise ValidationFailed(f"range must be one of {', '.join(store.RANGES)}", field="range")
    return range_name


async def project_metrics(
    client: Client, project: str, range_name: str, now: datetime | None = None
) -> tuple[Project, store.Series]:
    owned = await projects.get_owned(client, project)  # NOT_FOUND for anyone else's
    check_range(range_name)
    return owned, await store.read(owned.id, range_name, now or datetime.now(UTC))
