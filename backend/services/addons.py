"""Add-ons (issue 15): managed PostgreSQL and Redis servers of a Client, attached to its projects.

An add-on belongs to a Client; attaching it to a project sets the project's config var
(``DATABASE_URL`` / ``REDIS_URL``) to the add-on's URL through the env var path, as a new release.
Pomegranate runs the server (backend/pomegranate/addons.py) and connects it to exactly the
attached projects' networks, where the add-on's name is its host name. Every lookup is scoped to
the calling Client: another Client's add-on is NOT_FOUND, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend import security
from backend.db.models import Addon, AddonAttachment, AddonKind, Application, Client, Project
from backend.errors import Conflict, NotFound, PaasError, ValidationFailed
from backend.rpc import pomegranate_types as pt
from backend.rpc.pomegranate_client import PomegranateClient
from backend.services import activity, addon_status, config, quotas, volumes
from backend.services.projects import get_owned
from backend.settings import Settings, get_settings

log = logging.getLogger(__name__)

# One server operation at a time per add-on in this API process: the periodic reconcile must not
# bring back a server that a removal (or a restore's restart) is taking down right now.
_server_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)


def server_lock(addon: Addon) -> asyncio.Lock:
    return _server_locks[addon.id]


CONFIG_VARS = {AddonKind.POSTGRES: "DATABASE_URL", AddonKind.REDIS: "REDIS_URL"}
NAME_PREFIX = {AddonKind.POSTGRES: "postgresql", AddonKind.REDIS: "redis"}
PORTS = {AddonKind.POSTGRES: 5432, AddonKind.REDIS: 6379}
VERSIONS = {AddonKind.POSTGRES: "PostgreSQL 15", AddonKind.REDIS: "Redis 7"}
NAME_RE = re.compile(r"^(postgresql|redis)-[a-z]{2,20}-[0-9]{1,6}$")
WORDS = (
    "amber", "aqua", "azure", "cobalt", "coral", "crimson", "emerald", "golden", "indigo",
    "ivory", "jade", "lilac", "olive", "onyx", "ruby", "sapphire", "scarlet", "silver",
    "teal", "topaz", "violet",
)  # fmt: skip
QUOTA = quotas.ADDONS


def plans(settings: Settings | None = None) -> dict[str, int]:
    """Plan name -> memory MB, in the order of Settings.addon_plans (the first is the default)."""
    found: dict[str, int] = {}
    for item in (settings or get_settings()).addon_plans.split(","):
        name, _, memory = item.strip().partition("=")
        found[name.strip()] = int(memory)
    return found


def check_kind(kind: str) -> AddonKind:
    try:
        return AddonKind(kind)
    except ValueError:
        raise ValidationFailed(
            f"unknown add-on kind {str(kind)[:40]!r}; kinds: postgres, redis", field="kind"
        ) from None


def check_plan(plan: str | None) -> str:
    known = plans()
    if plan is None or plan == "":
        return next(iter(known))
    if plan not in known:
        raise ValidationFailed(
            f"unknown plan {str(plan)[:40]!r}; plans: {', '.join(known)}", field="plan"
        )
    return plan


def url_of(addon: Addon) -> str:
    password = security.decrypt(addon.password_encrypted)
    port = PORTS[addon.kind]
    if addon.kind == AddonKind.POSTGRES:
        return f"postgres://app:{password}@{addon.name}:{port}/app"
    return f"redis://:{password}@{addon.name}:{port}"


def _not_found(name: str) -> NotFound:
    # The same answer whether the add-on does not exist or is another Client's.
    return NotFound(f"add-on {str(name)[:64]!r} not found", field="name")


async def get_owned_addon(client: Client, name: str) -> Addon:
    valid = isinstance(name, str) and NAME_RE.fullmatch(name) is not None
    addon = await Addon.get_or_none(name=name, client=client) if valid else None
    if addon is None:
        raise _not_found(name)
    return addon


async def list_addons(client: Client) -> list[Addon]:
    return await Addon.filter(client=client).order_by("name")


async def addons_of(project: Project) -> list[Addon]:
    return await Addon.filter(attachments__project=project).order_by("name")


async def attachments_of(addon: Addon) -> list[AddonAttachment]:
    return await AddonAttachment.filter(addon=addon).prefetch_related("project").order_by("id")


def _pomegranate() -> PomegranateClient:
    from backend.services.applications.deployer import get_deployer

    return get_deployer().pomegranate


async def spec_of(addon: Addon) -> pt.AddonSpec:
    s = get_settings()
    projects = await Project.filter(addon_attachments__addon=addon).order_by("name")
    image = s.addon_postgres_image if addon.kind == AddonKind.POSTGRES else s.addon_redis_image
    return pt.AddonSpec(
        name=addon.name,
        kind=addon.kind.value,
        image=image,
        password=security.decrypt(addon.password_encrypted),
        memory_mb=plans(s).get(addon.plan, next(iter(plans(s).values()))),
        projects=tuple(p.name for p in projects),
        alias=addon.name,
    )


async def ensure_server(addon: Addon) -> pt.AddonState:
    """Make Pomegranate run the add-on's server as its rows say (idempotent)."""
    state = await _pomegranate().ensure_addon(await spec_of(addon))
    if state.running:
        await addon_status.record(addon, "available")
    else:
        await addon_status.record(addon, "down", f"server {state.state} {state.health}".strip())
    return state


async def status_of(addon: Addon) -> pt.AddonState:
    return await _pomegranate().addon_status(addon.name, addon.kind.value)


async def volume_sizes(listed: list[Addon]) -> dict[str, int]:
    """Bytes each add-on's data volume uses (-1: unknown), from Pomegranate."""
    return await _pomegranate().addon_volume_sizes([a.name for a in listed])


async def logs_of(addon: Addon, tail: int, follow: bool) -> AsyncIterator[str]:
    """The server's output lines, from Pomegranate."""
    lines = _pomegranate().addon_logs(addon.name, addon.kind.value, tail, follow)
    async with contextlib.aclosing(lines) as stream:
        async for line in stream:
            yield line.line


async def _set_var(
    client: Client, project: Project, var: str, url: str, cause: str
) -> Application | None:
    """The release the change made (None: nothing runs, or the URL was already set)."""
    from backend.services.applications import config_changes

    _, app = await config_changes.set_env(client, project.name, {var: url}, cause=cause)
    return app


async def _unset_var(client: Client, project: Project, var: str, cause: str) -> Application | None:
    from backend.services.applications import config_changes

    env = await config.env_of(project)
    if var not in env:
        return None
    _, app = await config_changes.unset_env(client, project.name, [var], cause=cause)
    return app


async def _new_name(kind: AddonKind) -> str:
    for _ in range(20):
        name = f"{NAME_PREFIX[kind]}-{secrets.choice(WORDS)}-{secrets.randbelow(99_999) + 1}"
        if not await Addon.filter(name=name).exists():
            return name
    raise Conflict("no free add-on name; try again", field="kind")


async def _check_var_free(project: Project, var: str) -> None:
    if await AddonAttachment.filter(project=project, config_var=var).exists():
        raise Conflict(
            f"project {project.name} already has an add-on providing {var}; detach it first",
            field="project",
        )


async def create_addon(client: Client, project_name: str, kind: str, plan: str | None) -> Addon:
    """A new add-on attached to ``project_name``; its server runs before this returns. Bad
    input and a server that does not start change nothing."""
    project = await get_owned(client, project_name)
    addon_kind = check_kind(kind)
    plan = check_plan(plan)
    var = CONFIG_VARS[addon_kind]
    await _check_var_free(project, var)
    limit = await quotas.limit_of(client.id, QUOTA)
    used = await Addon.filter(client=client).count()
    if used + 1 > limit:
        raise ValidationFailed(quotas.refusal_message(QUOTA, limit, used), field="kind")
    # Its data volume counts against volume_mb like the projects' volumes.
    space = await volumes.used_mb(_pomegranate(), client)
    await quotas.check_volume_space(client.id, space, field="kind")
    try:
        async with in_transaction():
            addon = await Addon.create(
                client=client,
                kind=addon_kind,
                plan=plan,
                name=await _new_name(addon_kind),
                version=VERSIONS[addon_kind],
                password_encrypted=security.encrypt(secrets.token_urlsafe(32)),
            )
            await AddonAttachment.create(addon=addon, project=project, config_var=var)
    except IntegrityError as exc:
        raise Conflict("the add-on could not be created; try again", field="kind") from exc
    # Under the add-on's lock: the periodic reconcile must not find the server not yet running
    # (a false "down" in the history) and start it a second time.
    async with server_lock(addon):
        try:
            await addon_status.record(addon, "creating")
            await ensure_server(addon)
        except BaseException:
            # Nothing half made: no rows, no container, no volume.
            try:
                await _pomegranate().remove_addon(addon.name, addon.kind.value)
            except PaasError:
                log.warning("could not remove the server of failed add-on %s", addon.name)
            await addon.delete()
            raise
    await _set_var(client, project, var, url_of(addon), f"add-on: attach {addon.name}")
    await activity.record(
        client, "addon.create", project=project, addon=addon.name, kind=addon_kind.value, plan=plan
    )
    return addon


async def attach_addon(
    client: Client, name: str, project_name: str
) -> tuple[AddonAttachment, Application | None]:
    """The new attachment and the project's release that sets its config var (if one ran)."""
    addon = await get_owned_addon(client, name)
    project = await get_owned(client, project_name)
    if await AddonAttachment.filter(addon=addon, project=project).exists():
        raise Conflict(f"{addon.name} is already attached to {project.name}", field="project")
    var = CONFIG_VARS[addon.kind]
    await _check_var_free(project, var)
    try:
        attachment = await AddonAttachment.create(addon=addon, project=project, config_var=var)
    except IntegrityError as exc:
        raise Conflict(f"{project.name} already has {var}", field="project") from exc
    try:
        async with server_lock(addon):
            await ensure_server(addon)
    except BaseException:
        await attachment.delete()
        raise
    app = await _set_var(client, project, var, url_of(addon), f"add-on: attach {addon.name}")
    await activity.record(client, "addon.attach", project=project, addon=addon.name)
    return attachment, app


async def detach_addon(
    client: Client, name: str, project_name: str
) -> tuple[AddonAttachment, Application | None]:
    """The removed attachment and the project's release without its config var (if one ran)."""
    addon = await get_owned_addon(client, name)
    project = await get_owned(client, project_name)
    attachment = await AddonAttachment.get_or_none(addon=addon, project=project)
    if attachment is None:
        raise NotFound(f"{addon.name} is not attached to {project.name}", field="project")
    await attachment.delete()
    app = await _unset_var(client, project, attachment.config_var, f"add-on: detach {addon.name}")
    async with server_lock(addon):
        await ensure_server(addon)  # off the project's network
    await activity.record(client, "addon.detach", project=project, addon=addon.name)
    return attachment, app


async def rotate_credentials(client: Client, name: str) -> Addon:
    """A new password in the server, then a release of every attached project with the new URL."""
    addon = await get_owned_addon(client, name)
    old = addon.password_encrypted
    addon.password_encrypted = security.encrypt(secrets.token_urlsafe(32))
    await addon.save(update_fields=["password_encrypted"])
    try:
        async with server_lock(addon):  # the container is re-created: not a server found down
            await ensure_server(addon)
    except BaseException:
        addon.password_encrypted = old
        await addon.save(update_fields=["password_encrypted"])
        raise
    url = url_of(addon)
    for attachment in await attachments_of(addon):
        await _set_var(
            client, attachment.project, attachment.config_var, url,
            f"add-on: rotate {addon.name} credentials",
        )  # fmt: skip
    await activity.record(client, "addon.rotate", addon=addon.name)
    return addon


async def remove_addon(client: Client, name: str, confirm: str) -> Addon:
    """Remove the add-on: a final backup is taken and kept, its config var is unset on every
    attached project (a release each), the server and its volume are removed."""
    from backend.services import addon_backups

    addon = await get_owned_addon(client, name)
    if confirm != addon.name:
        raise ValidationFailed(
            f"removing {addon.name} deletes its data; confirm with its name", field="confirm"
        )
    async with server_lock(addon):
        previous = addon.status
        await addon_status.record(addon, "removing")
        try:
            await addon_backups.capture(addon, kind="final")
        except BaseException:
            await addon_status.record(addon, previous, "removal failed: no final backup")
            raise
        for attachment in await attachments_of(addon):
            await attachment.delete()
            await _unset_var(
                client, attachment.project, attachment.config_var, f"add-on: remove {addon.name}"
            )
        await _pomegranate().remove_addon(addon.name, addon.kind.value)
        await addon.delete()
    _server_locks.pop(addon.id, None)
    await activity.record(client, "addon.remove", addon=addon.name)
    await addon_status.removed(addon)
    return addon


TOOLS = {AddonKind.POSTGRES: "psql", AddonKind.REDIS: "redis-cli"}


async def client_tool(
    client: Client, project: Project, name: str, spec: pt.ReleaseSpec, command: list[str]
) -> tuple[pt.ReleaseSpec, list[str]]:
    """The one-off of `pg:psql` / `redis:cli`: the add-on's own image (which has the client
    tool) instead of the app's, on the project's network, with only the add-on's URL as env;
    ``command`` is the tool's name and its arguments. The add-on must be attached to the
    project (else its host is not even reachable from there)."""
    addon = await get_owned_addon(client, name)
    if not await AddonAttachment.filter(addon=addon, project=project).exists():
        raise ValidationFailed(f"{addon.name} is not attached to {project.name}", field="addon")
    tool = TOOLS[addon.kind]
    if command[0] != tool:
        raise ValidationFailed(f"{addon.name} takes {tool}, not {command[0][:40]!r}", field="addon")
    url = url_of(addon)
    s = get_settings()
    env = {CONFIG_VARS[addon.kind]: url, "HOME": "/tmp"}  # history files: a writable home
    if addon.kind == AddonKind.REDIS:
        # redis-cli's -u does not authenticate a URL without a user name: its env var does.
        env["REDISCLI_AUTH"] = security.decrypt(addon.password_encrypted)
    # The app's release spec (its project, limits, health settings), with the add-on's image
    # and only its URL as env; no processes, no volumes.
    tool_spec = dataclasses.replace(
        spec,
        image=s.addon_postgres_image if addon.kind == AddonKind.POSTGRES else s.addon_redis_image,
        env=env,
        memory_mb=min(spec.memory_mb, 256),
        processes=(),
        volumes=(),
    )
    if addon.kind == AddonKind.POSTGRES:
        return tool_spec, [tool, url, *command[1:]]
    return tool_spec, [tool, "-h", addon.name, "-p", str(PORTS[addon.kind]), *command[1:]]


async def remove_all_of(client: Client) -> None:
    """The Client's account is being deleted: every add-on server and volume, and every backup
    file, goes (no final backup: nobody would be left to restore it)."""
    from backend.services import addon_backups

    for addon in await list_addons(client):
        await _pomegranate().remove_addon(addon.name, addon.kind.value)
        await addon.delete()
    await addon_backups.delete_files_of(client.id)


# An add-on still "creating" after this was interrupted (e.g. the API was killed): the reconcile
# takes it up. Before, its creation owns the server (EnsureAddon waits up to 90 s for it).
CREATION_GRACE = timedelta(minutes=5)


def _age(addon: Addon) -> timedelta:
    return datetime.now(UTC) - addon.created_at


async def reconcile_all() -> None:
    """Bring back the server of every add-on that is not running (a removed container, a
    Pomegranate or engine that lost it); called from the API's periodic reconcile."""
    for listed in await Addon.all():
        async with server_lock(listed):
            # Read again under the lock: a removal that held it has deleted the row.
            addon = await Addon.get_or_none(id=listed.id)
            if addon is None:
                _server_locks.pop(listed.id, None)
                continue
            if addon.status == "creating" and _age(addon) < CREATION_GRACE:
                continue  # its creation is starting it (an interrupted one is taken up later)
            try:
                state = await status_of(addon)
                if not state.running:
                    # The down time is in the history: the engine's state when found.
                    await addon_status.record(addon, "down", f"server {state.state}")
                    await ensure_server(addon)
                elif addon.status == "down":
                    # Back without an ensure of ours (the engine's restart policy after a dockerd
                    # restart, while our ensure failed on the engine being away).
                    await addon_status.record(addon, "available", "server running again")
            except PaasError as exc:
                log.warning("add-on %s not reconciled: %s", addon.name, exc.message)
