"""What config mutations answer (issue 13's API contract): the project as changed and the
Application (release) the change made, so that clients follow that release instead of
comparing the project's releases before and after."""

from __future__ import annotations

import strawberry

from backend.api.addon_types import AddonType
from backend.api.types import ApplicationType, ProjectType, VolumeType
from backend.db import models

_APPLICATION = (
    "The release this change made (config_changed), or null when it made none: nothing "
    "runs yet (the next deploy picks the change up) or nothing changed."
)


def release_of(app: models.Application | None, project: models.Project) -> ApplicationType | None:
    return ApplicationType.of(app, project.name) if app is not None else None


@strawberry.type(
    description="A config change (env, scale, resources, settings, volumes): the project as it "
    "is now and the release it made."
)
class ConfigChangePayload:
    project: ProjectType
    application: ApplicationType | None = strawberry.field(description=_APPLICATION)

    @classmethod
    def of(cls, project: models.Project, app: models.Application | None) -> ConfigChangePayload:
        return cls(project=ProjectType.of(project), application=release_of(app, project))


@strawberry.type(description="A removed volume (its data goes), the project, the release made.")
class VolumeRemovalPayload:
    volume: VolumeType
    project: ProjectType
    application: ApplicationType | None = strawberry.field(description=_APPLICATION)


@strawberry.type(
    description="An add-on attached to or detached from a project: its config var set or "
    "unset, and the release of the project that made."
)
class AddonAttachmentPayload:
    addon: AddonType
    project: ProjectType
    application: ApplicationType | None = strawberry.field(description=_APPLICATION)
