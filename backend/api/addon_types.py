"""GraphQL types of add-ons (issue 15), thin over the addons and addon_backups services."""

from __future__ import annotations

from datetime import datetime

import strawberry

from backend.db import models
from backend.errors import PaasError, ValidationFailed
from backend.services import addon_backups, addon_status, addons

strawberry.enum(models.AddonKind, name="AddonKind")  # registers the class in place
AddonKind = models.AddonKind


@strawberry.type(name="AddonAttachment")
class AddonAttachmentType:
    project: str
    config_var: str = strawberry.field(description="The project's config var with the URL.")
    created_at: datetime


@strawberry.type(name="AddonBackup")
class AddonBackupType:
    id: strawberry.ID
    addon_name: str
    created_at: datetime
    size_bytes: float = strawberry.field(description="Bytes (a Float: backups can exceed 2 GiB).")
    kind: str = strawberry.field(description="manual, scheduled, or final (taken at removal).")

    @classmethod
    def of(cls, backup: models.AddonBackup) -> AddonBackupType:
        return cls(
            id=strawberry.ID(str(backup.id)),
            addon_name=backup.addon_name,
            created_at=backup.created_at,
            size_bytes=float(backup.size_bytes),
            kind=backup.kind,
        )


@strawberry.type(name="AddonStatusEvent", description="A status transition of an add-on.")
class AddonStatusEventType:
    name: str = strawberry.field(description="The add-on's name.")
    status: str = strawberry.field(
        description="creating, available, down, restoring, removing; removed is the last event."
    )
    message: str = strawberry.field(description="Why, when known (e.g. the engine's state).")
    at: datetime

    @classmethod
    def of(cls, addon: models.Addon, change: models.AddonStatusChange) -> AddonStatusEventType:
        return cls(name=addon.name, status=change.status, message=change.message, at=change.at)


@strawberry.type(name="AddonLogLine", description="A line of an add-on server's output.")
class AddonLogLineType:
    line: str


MAX_HISTORY = 200


def check_last(last: int) -> int:
    if not 1 <= last <= MAX_HISTORY:
        raise ValidationFailed(f"last must be between 1 and {MAX_HISTORY}", field="last")
    return last


@strawberry.type(name="AddonServer", description="The add-on's server as the engine reports it.")
class AddonServerType:
    state: str
    running: bool
    health: str
    networks: list[str] = strawberry.field(description="Projects whose network it is on.")
    restart_count: int


@strawberry.type(name="Addon", description="A managed PostgreSQL or Redis server (issue 15).")
class AddonType:
    model: strawberry.Private[models.Addon]
    name: str
    kind: AddonKind
    plan: str
    status: str
    version: str
    created_at: datetime

    @strawberry.field(description="The memory limit of its plan, MB.")
    def memory_mb(self) -> int:
        return addons.plans().get(self.model.plan, 0)

    @strawberry.field(description="The config var it sets on its projects.")
    def config_var(self) -> str:
        return addons.CONFIG_VARS[self.model.kind]

    @strawberry.field
    async def attachments(self) -> list[AddonAttachmentType]:
        return [
            AddonAttachmentType(
                project=a.project.name, config_var=a.config_var, created_at=a.created_at
            )
            for a in await addons.attachments_of(self.model)
        ]

    @strawberry.field(description="Backups, newest first.")
    async def backups(self) -> list[AddonBackupType]:
        return [AddonBackupType.of(b) for b in await addon_backups.list_backups(self.model)]

    @strawberry.field(
        description="Status transitions with their time, oldest first: the last `last`."
    )
    async def status_history(self, last: int = 20) -> list[AddonStatusEventType]:
        return [
            AddonStatusEventType.of(self.model, c)
            for c in await addon_status.history(self.model, check_last(last))
        ]

    @strawberry.field(
        description="Bytes its data volume uses (counted in the volume_mb quota); null when the "
        "engine is not reachable or does not say."
    )
    async def data_size_bytes(self) -> float | None:
        try:
            sizes = await addons.volume_sizes([self.model])
        except PaasError:
            return None
        size = sizes.get(self.model.name, -1)
        return float(size) if size >= 0 else None

    @strawberry.field(description="The server's state; null when the engine is not reachable.")
    async def server(self) -> AddonServerType | None:
        try:
            state = await addons.status_of(self.model)
        except PaasError:
            return None
        return AddonServerType(
            state=state.state,
            running=state.running,
            health=state.health,
            networks=list(state.projects),
            restart_count=state.restart_count,
        )

    @classmethod
    def of(cls, addon: models.Addon) -> AddonType:
        return cls(
            model=addon,
            name=addon.name,
            kind=addon.kind,
            plan=addon.plan,
            status=addon.status,
            version=addon.version,
            created_at=addon.created_at,
        )
