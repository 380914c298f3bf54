"""GraphQL types of the activity feed and of login sessions (issue 18)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from backend.db import models
from backend.services import activity


@strawberry.type(
    name="Activity",
    description="One action on your account or projects: who did it (which token or session, "
    "from the web app, the CLI, a git push or the API), when, and what (never a secret).",
)
class ActivityType:
    id: strawberry.ID
    at: datetime
    action: str = strawberry.field(description="deploy, env.set, scale, session.login, ...")
    project: str | None = strawberry.field(description="The project's name, if any.")
    source: str = strawberry.field(description="web, cli, git or api.")
    token_id: strawberry.ID | None = strawberry.field(
        description="The token or session acted with (it may be revoked since)."
    )
    token_name: str
    summary: str = strawberry.field(description="One line for people.")
    detail: JSON = strawberry.field(
        description="The action's details (env var keys, never values)."
    )
    ssh_key: str | None = strawberry.field(
        default=None, description="A git push: the title of the SSH key that pushed."
    )
    ssh_key_fingerprint: str | None = strawberry.field(
        default=None, description="A git push: the SHA256 fingerprint of the SSH key that pushed."
    )

    @classmethod
    def of(cls, row: models.Activity) -> ActivityType:
        return cls(
            id=strawberry.ID(str(row.id)),
            at=row.at,
            action=row.action,
            project=row.project_name or None,
            source=row.source,
            token_id=strawberry.ID(str(row.token_id)) if row.token_id is not None else None,
            token_name=row.token_name,
            summary=activity.summary(row),
            detail=cast(JSON, row.detail),  # JSON is a scalar marker for any JSON value
            ssh_key=_text(row.detail, activity.SSH_KEY),
            ssh_key_fingerprint=_text(row.detail, activity.SSH_KEY_FINGERPRINT),
        )


def _text(detail: object, key: str) -> str | None:
    value = detail.get(key) if isinstance(detail, dict) else None
    return str(value) if value else None


@strawberry.type(name="Session", description="A login session (a device logged in).")
class SessionType:
    id: strawberry.ID
    device: str = strawberry.field(description="The browser or program, shortened.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    current: bool = strawberry.field(description="The session this request is made with.")

    @classmethod
    def of(cls, token: models.ApiToken, current: models.ApiToken | None) -> SessionType:
        return cls(
            id=strawberry.ID(str(token.id)),
            device=token.device or "unknown device",
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
            current=current is not None and current.id == token.id,
        )
