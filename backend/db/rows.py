"""Plain rows of `application`, read without building models, converted as the models would.

Building a Tortoise model per row, and parsing its datetimes with the pure-Python iso8601, was
most of what the `projects { applications }` listing cost (issue 17, docs/architecture.md
2.4.15). The API's batched release queries read plain rows instead and convert the columns
here, with the C parsers of the standard library; the result equals the model's attributes
(use_tz=True, timezone UTC: backend/db/config.py) on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, overload

# The columns of `application` the API shows (not the build's processes, port or limits).
APPLICATION_COLUMNS = (
    "id",
    "project_id",
    "number",
    "status",
    "cause",
    "commit_sha",
    "image",
    "image_digest",
    "env_snapshot",
    "replicas",
    "domains",
    "created_at",
    "finished_at",
    "failure_reason",
)


@overload
def datetime_of(value: datetime | str) -> datetime: ...
@overload
def datetime_of(value: None) -> None: ...
def datetime_of(value: datetime | str | None) -> datetime | None:
    """A stored datetime as an aware UTC datetime (SQLite gives text, PostgreSQL datetimes)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # Tortoise's make_aware in the UTC default timezone
    return value.astimezone(UTC)


def json_of(value: Any) -> Any:
    """A JSON column: text on both databases here, already decoded by some drivers."""
    return json.loads(value) if isinstance(value, str | bytes) else value
