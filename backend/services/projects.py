"""Projects and their applications, always scoped to the owner."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend import repos, validation
from backend.db.models import Application, Client, Project
from backend.errors import Conflict, NotFound, Unavailable, ValidationFailed
from backend.events import EventKind, get_bus, project_topic
from backend.services import activity, quotas
from backend.services.applications.status import LIVE


def _not_found(name: str) -> NotFound:
    # The same answer whether the project does not exist or belongs to someone else.
    return NotFound(f"project {name!r} not found", field="project")


async def get_owned(client: Client, name: str) -> Project:
    # A name no project can have is not looked up: the ORM refuses values longer than the
    # column with an exception (INTERNAL, found by the fuzzer), the answer is simply NOT_FOUND.
    valid = isinstance(name, str) and validation.PROJECT_NAME_RE.fullmatch(name) is not None
    project = await Project.get_or_none(name=name, owner=client) if valid else None
    if project is None:
        raise _not_found(str(name)[:60])
    return project


async def list_projects(client: Client) -> list[Project]:
    return await Project.filter(owner=client).order_by("name")


async def create_project(client: Client, name: str) -> Project:
    name = validation.project_name(name)
    if await Project.filter(name=name).exists():
        raise Conflict(f"project name {name!r} is taken", field="name")
    await quotas.check_new_project(client)
    limit_mb = await quotas.limit_of(client.id, quotas.REPOSITORY_MB)
    created = False
    try:
        # One transaction: no project without its repository. A failed git init rolls the row
        # back, which (unlike a DELETE) needs no free disk space.
        async with in_transaction():
            try:
                project = await Project.create(owner=client, name=name, replicas={"web": 1})
            except IntegrityError as exc:
                raise Conflict(f"project name {name!r} is taken", field="name") from exc
            try:
                await repos.init_bare(name, max_input_bytes=int(limit_mb * quotas.MB))
            except repos.RepoError as exc:
                raise Unavailable("could not create the project's git repository") from exc
            created = True
    except BaseException:
        if created:  # the commit itself failed: the repository has no project
            await repos.remove(name)
        raise
    await activity.record(client, "project.create", project=project)
    return project


async def delete_project(client: Client, name: str) -> Project:
    project = await get_owned(client, name)
    await project.delete()
    await repos.remove(project.name)
    await get_bus().publish(
        project_topic(project.id), EventKind.PROJECT_DELETED, {"project": project.name}
    )
    await activity.record(client, "project.delete", project_name=project.name)
    return project


def check_page(first: int, offset: int, max_page: int) -> None:
    if not 1 <= first <= max_page:
        raise ValidationFailed(f"first must be between 1 and {max_page}", field="first")
    if offset < 0:
        raise ValidationFailed("offset must not be negative", field="offset")


async def list_applications(
    project: Project, *, first: int, offset: int, max_page: int
) -> list[Application]:
    check_page(first, offset, max_page)
    return await Application.filter(project=project).order_by("-number").offset(offset).limit(first)


async def count_applications(project: Project) -> int:
    return await Application.filter(project=project).count()


async def live_application(project: Project) -> Application | None:
    return await Application.filter(project=project, status__in=LIVE).order_by("-number").first()


async def get_application(client: Client, project_name: str, number: int) -> Application:
    project = await get_owned(client, project_name)
    app = await Application.get_or_none(project=project, number=number)
    if app is None:
        raise NotFound(f"release v{number} of {project_name!r} not found", field="number")
    return app
