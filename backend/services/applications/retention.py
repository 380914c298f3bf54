"""What is kept of past releases: their images (the last N, for rollbacks) and the volumes the
project still names; and which release a rollback may go back to."""

from __future__ import annotations

import logging

from backend.db.columns import column
from backend.db.models import Application, Project, Volume
from backend.errors import NotFound, Unavailable, ValidationFailed
from backend.rpc.pomegranate_client import PomegranateClient
from backend.services import volumes
from backend.services.applications.status import RELEASED
from backend.services.projects import live_application

log = logging.getLogger("paastech.deployments")


async def images_to_keep(project: Project, kept: int) -> list[str]:
    """The images of the project's last ``kept`` distinct released images, newest first."""
    images: list[str] = []
    for image in await column(
        Application.filter(project=project, status__in=RELEASED, image__not_isnull=True).order_by(
            "-number"
        ),
        "image",
    ):
        if image not in images:
            images.append(image)
    return images[:kept]


async def prune_images(pomegranate: PomegranateClient, project: Project, kept: int) -> None:
    keep = await images_to_keep(project, kept)
    try:
        await pomegranate.prune_images(project.name, keep)
    except Unavailable:
        log.warning("image pruning of %s skipped: Pomegranate unreachable", project.name)


async def prune_volumes(pomegranate: PomegranateClient, project: Project) -> list[str]:
    """Remove the project's Docker volumes that no Volume row names any more (removed by the
    owner), once no container uses them; the Docker names removed."""
    try:
        keep: set[str] = set(await column(Volume.filter(project=project), "key"))
        removed = []
        for found in await pomegranate.list_volumes([project.name]):
            if volumes.docker_key(found.docker_name) in keep:
                continue
            if await pomegranate.remove_volume(project.name, found.docker_name):
                removed.append(found.docker_name)
            else:
                log.info("volume %s still in use: removed after the next switch", found.name)
        return removed
    except Unavailable:
        log.warning("volume pruning of %s skipped: Pomegranate unreachable", project.name)
        return []


async def rollback_target(project: Project, number: int | None, kept: int) -> Application:
    """The release a rollback goes back to: ``number``, or the one before the live one (as on
    Heroku). Refused when it never ran or its image was pruned."""
    live = await live_application(project)
    if number is None:
        if live is None:
            raise ValidationFailed("nothing is running to roll back from", field="number")
        target = (
            await Application.filter(project=project, status__in=RELEASED, number__lt=live.number)
            .order_by("-number")
            .first()
        )
        if target is None:
            raise ValidationFailed("no earlier release to roll back to", field="number")
        return target
    target = await Application.get_or_none(project=project, number=number)
    if target is None:
        raise NotFound(f"release v{number} of {project.name!r} not found", field="number")
    if target.status not in RELEASED or not target.image:
        raise ValidationFailed(
            f"v{number} never ran ({target.status.value}): roll back to a release that did",
            field="number",
        )
    if target.image not in await images_to_keep(project, kept):
        raise ValidationFailed(
            f"the image of v{number} was pruned: only the last {kept} images are kept",
            field="number",
        )
    return target
