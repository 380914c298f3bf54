"""GraphQL types of issue 18's alert webhooks and their delivery log."""

from __future__ import annotations

from datetime import datetime

import strawberry

from backend.alerts import webhooks
from backend.db import models


@strawberry.type
class WebhookDeliveryType:
    id: strawberry.ID
    event: str = strawberry.field(
        description="release_failed, release_live, crash_loop, oom_kill or memory_high."
    )
    text: str
    attempts: int
    ok: bool
    status_code: int | None
    error: str
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, row: models.WebhookDelivery) -> WebhookDeliveryType:
        return cls(
            id=strawberry.ID(str(row.id)),
            event=row.event,
            text=row.text,
            attempts=row.attempts,
            ok=row.ok,
            status_code=row.status_code,
            error=row.error,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )


@strawberry.type(description="A project's notification webhook (JSON with a Slack `text`).")
class WebhookType:
    id: strawberry.ID
    url: str
    created_at: datetime
    row: strawberry.Private[models.Webhook]

    @strawberry.field(description="The newest deliveries first (at most 50 are kept).")
    async def deliveries(self, first: int = 20) -> list[WebhookDeliveryType]:
        return [WebhookDeliveryType.of(d) for d in await webhooks.deliveries(self.row, first)]

    @classmethod
    def of(cls, row: models.Webhook) -> WebhookType:
        return cls(id=strawberry.ID(str(row.id)), url=row.url, created_at=row.created_at, row=row)
