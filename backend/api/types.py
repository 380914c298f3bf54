"""GraphQL object types. Each wraps a model and resolves relations through the services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry
from graphql import FieldNode, IntValueNode, VariableNode

from backend import dnscheck, repos, security
from backend.api.addon_types import AddonType
from backend.api.event_kinds import ProjectEventKind, public_kind
from backend.api.loaders import loaded
from backend.api.release_columns import STATE_COLUMNS, columns_for, columns_of, release_fields
from backend.db import models
from backend.db.columns import column
from backend.db.rows import datetime_of, json_of
from backend.errors import Unavailable
from backend.events import Event
from backend.ingress import certstore
from backend.services import addons, config, projects, quotas, serving, volumes
from backend.services.applications import status as app_status
from backend.settings import get_settings

if TYPE_CHECKING:
    from backend.rpc import pomegranate_types as pt

APPLICATIONS_PAGE = 20  # releases per page when `applications` is not given `first`
T = TypeVar("T")
R = TypeVar("R")

# strawberry.enum registers each class in place and returns it: the names below are the classes
# themselves (so the type checker reads them as types).
strawberry.enum(models.ApplicationStatus, name="ApplicationStatus")
strawberry.enum(
    serving.State,
    name="ProjectState",
    description="What a project serves (issue 18): RUNNING only when its URL answers; IDLE "
    "when it is live with 0 web replicas (its URL serves nothing).",
)
ApplicationStatus = models.ApplicationStatus
ProjectState = serving.State


def _status_group(group: tuple[models.ApplicationStatus, ...], meaning: str) -> bool:
    """A Boolean field of a type with a ``status``: whether it is in ``group`` (one of
    services/applications/status.py), so that clients don't copy the groups."""

    def resolve(root: Any) -> bool:
        return models.ApplicationStatus(root.status) in group

    names = ", ".join(s.name for s in group)
    return strawberry.field(resolver=resolve, description=f"{meaning} (status {names}).")


@strawberry.type
class ProcessScale:
    process_type: str
    replicas: int


def _scales(replicas: dict[str, int]) -> list[ProcessScale]:
    return [ProcessScale(process_type=k, replicas=v) for k, v in sorted(replicas.items())]


@strawberry.type(name="Application", description="One immutable release of a project.")
class ApplicationType:
    # What the resolvers below need: from a model (`of`) or a plain row (`of_row`, listings).
    id: strawberry.Private[int]
    replica_counts: strawberry.Private[dict[str, int] | str]  # JSON text from a row
    env_snapshot: strawberry.Private[str]
    project_name: str
    number: int
    status: ApplicationStatus
    cause: str
    commit_sha: str | None
    image: str | None
    image_digest: str | None = strawberry.field(
        description="The image's digest in the platform registry (sha256:...): what runs."
    )
    created_at: datetime
    finished_at: datetime | None
    failure_reason: str | None
    domains: list[str]

    finished: bool = _status_group(app_status.FINISHED, "It will not build or deploy again")
    live: bool = _status_group(app_status.LIVE, "It is what the project serves now")
    failed: bool = _status_group(app_status.FAILED, "It went wrong: it never ran or it crashed")

    @strawberry.field
    def replicas(self) -> list[ProcessScale]:
        return _scales(json_of(self.replica_counts))

    @strawberry.field(
        description="What it serves while live (RUNNING, IDLE with 0 web replicas, CRASHED), "
        "STOPPED, else null."
    )
    def state(self) -> ProjectState | None:
        return serving.release_state(self.status, json_of(self.replica_counts))

    @strawberry.field(description="Names of the env vars this release runs with (values hidden).")
    def env_keys(self) -> list[str]:
        if not self.env_snapshot:
            return []
        import json

        return sorted(json.loads(security.decrypt(self.env_snapshot)))

    @strawberry.field(description="The build and deploy log, oldest line first.")
    async def build_log(self, first: int = 1000, offset: int = 0) -> list[LogLine]:
        rows = (
            await models.BuildLog.filter(application_id=self.id)
            .order_by("seq")
            .offset(max(offset, 0))
            .limit(min(max(first, 1), 10_000))
            .values_list("seq", "line")
        )
        return [LogLine(seq=seq, line=line) for seq, line in rows]

    @strawberry.field
    async def status_history(self) -> list[StatusChangeType]:
        rows = await models.StatusChange.filter(application_id=self.id).order_by("id")
        return [StatusChangeType(status=r.status, message=r.message, at=r.at) for r in rows]

    @classmethod
    def of(cls, app: models.Application, project_name: str) -> ApplicationType:
        return cls(
            id=app.id,
            replica_counts=app.replicas,
            env_snapshot=app.env_snapshot,
            project_name=project_name,
            number=app.number,
            status=app.status,
            cause=app.cause,
            commit_sha=app.commit_sha,
            image=app.image,
            image_digest=app.image_digest,
            created_at=app.created_at,
            finished_at=app.finished_at,
            failure_reason=app.failure_reason,
            domains=list(app.domains),
        )

    @classmethod
    def of_row(cls, row: dict[str, Any], project_name: str) -> ApplicationType:
        """From a plain row of `application` (the batched listings: no model per release;
        backend/db/rows.py converts as the model would). The row holds only the columns the
        query selects (release_columns.py): only those become attributes, so a field read
        from a column that was not read fails loudly. `replicas` is decoded when asked."""
        release = cls.__new__(cls)  # not __init__: it wants every attribute
        values = release.__dict__
        values["project_name"] = project_name
        for db_column, value in row.items():
            attribute = _ROW_ATTRIBUTES.get(db_column)
            if attribute is not None:
                name, convert = attribute
                values[name] = value if convert is None else convert(value)
        return release


_STATUS = {s.value: s for s in models.ApplicationStatus}

# Column of `application` -> (attribute of ApplicationType, conversion or None).
_ROW_ATTRIBUTES: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
    "id": ("id", None),
    "replicas": ("replica_counts", None),  # JSON text: decoded when asked
    "env_snapshot": ("env_snapshot", None),
    "number": ("number", None),
    "status": ("status", _STATUS.__getitem__),
    "cause": ("cause", None),
    "commit_sha": ("commit_sha", None),
    "image": ("image", None),
    "image_digest": ("image_digest", None),
    "created_at": ("created_at", datetime_of),
    "finished_at": ("finished_at", datetime_of),
    "failure_reason": ("failure_reason", None),
    "domains": ("domains", lambda value: list(json_of(value))),
}


@strawberry.type(name="EnvVar")
class EnvVarType:
    key: str
    value: str


@strawberry.enum(name="CertificateStatus")
class CertificateStatus(Enum):
    PENDING = certstore.PENDING
    VALID = certstore.VALID
    FAILED = certstore.FAILED
    DNS_MISMATCH = certstore.DNS_MISMATCH
    RATE_LIMITED = certstore.RATE_LIMITED
    EXPIRED = certstore.EXPIRED


@strawberry.type(name="Certificate", description="The HTTPS certificate of a hostname (ACME).")
class CertificateType:
    status: CertificateStatus
    issuer: str | None
    not_after: datetime | None
    last_error: str | None = strawberry.field(
        description="Why the last order failed or was not placed; null after a success."
    )


@strawberry.type(name="DomainVerification")
class DomainVerificationType:
    record: str = strawberry.field(
        description="The TXT record to create, e.g. _paastech-challenge.www.example.com."
    )
    value: str = strawberry.field(description="The value the TXT record must hold.")
    type: str = "TXT"


@strawberry.type(name="Domain")
class DomainType:
    hostname: str
    url: str
    default: bool
    verified: bool = strawberry.field(
        default=True,
        description="Whether control of the hostname is proven; only verified domains are "
        "routed and get a certificate.",
    )
    verification: DomainVerificationType | None = strawberry.field(
        default=None,
        description="What proves control, while the domain is not verified: create this "
        "record, then run the verifyDomain mutation.",
    )

    @strawberry.field(
        description="Null while HTTPS is off or the ingress has not looked at the hostname yet."
    )
    def certificate(self) -> CertificateType | None:
        s = get_settings()
        if not s.tls:
            return None
        # The ingress owns the certificates and writes their status to the data dir.
        status = certstore.CertStore(s.data_dir).read_status(self.hostname)
        if status is None or status.status not in certstore.STATUSES:
            return None
        return CertificateType(
            status=CertificateStatus(status.status),
            issuer=status.issuer,
            not_after=(datetime.fromtimestamp(status.not_after, UTC) if status.not_after else None),
            last_error=status.last_error,
        )


@strawberry.type(
    name="Volume",
    description="A persistent volume (issue 15): mounted at mountPath in every replica of its "
    "process types (shared by the replicas), kept across releases, rollbacks and restarts.",
)
class VolumeType:
    name: str
    mount_path: str
    process_types: list[str]
    size_bytes: float = strawberry.field(
        description="Space in use in bytes: 0 until a container first mounted it, -1 unknown."
    )
    created_at: datetime

    @classmethod
    def of(cls, v: volumes.VolumeView) -> VolumeType:
        return cls(
            name=v.name,
            mount_path=v.mount_path,
            process_types=v.process_types,
            size_bytes=float(v.size_bytes),
            created_at=v.created_at,
        )


@strawberry.type(name="ProjectSettings")
class ProjectSettingsType:
    replicas: list[ProcessScale]
    memory_mb: int
    cpu: float
    port: int | None
    health_check_path: str
    deploy_branch: str
    hsts: bool = strawberry.field(
        description="Strict-Transport-Security on the app's HTTPS answers (max-age: a setting)."
    )


@strawberry.type(name="Project")
class ProjectType:
    model: strawberry.Private[models.Project]
    name: str
    created_at: datetime

    @strawberry.field(description="The project's default URL.")
    def url(self) -> str:
        return get_settings().app_url(config.default_hostname(self.model))

    @strawberry.field(description="Where to push: `git remote add paastech <gitUrl>`.")
    def git_url(self) -> str:
        return repos.git_url(self.name)

    @strawberry.field
    def settings(self) -> ProjectSettingsType:
        s, p = get_settings(), self.model
        return ProjectSettingsType(
            replicas=_scales(p.replicas),
            memory_mb=p.memory_mb or s.default_memory_mb,
            cpu=p.cpu or s.default_cpu,
            port=p.port,
            health_check_path=p.health_check_path,
            deploy_branch=p.deploy_branch,
            hsts=p.hsts,
        )

    @strawberry.field(
        description="The project's hostnames, the default one first; custom domains are routed "
        "once verified."
    )
    async def domains(self) -> list[DomainType]:
        app_url = get_settings().app_url
        own = config.default_hostname(self.model)
        found = [DomainType(hostname=own, url=app_url(own), default=True)]
        for d in await config.domains_of(self.model):
            pending = d.verified_at is None
            found.append(
                DomainType(
                    hostname=d.hostname,
                    url=app_url(d.hostname),
                    default=False,
                    verified=not pending,
                    verification=DomainVerificationType(
                        record=dnscheck.challenge_name(d.hostname), value=d.verification_token
                    )
                    if pending
                    else None,
                )
            )
        return found

    @strawberry.field(description="Persistent volumes, by name, with the space each uses.")
    async def volumes(self) -> list[VolumeType]:
        from backend.services.applications.deployer import get_deployer

        found = await volumes.list_volumes(get_deployer().pomegranate, self.model)
        return [VolumeType.of(v) for v in found]

    @strawberry.field
    async def env_vars(self) -> list[EnvVarType]:
        env = await config.env_of(self.model)
        return [EnvVarType(key=k, value=v) for k, v in env.items()]

    # `applications` and `liveApplication` are synchronous resolvers that return the releases
    # when `ProjectType.list_of` prefetched them for the whole list, else an awaitable of them
    # (graphql-core awaits what a resolver returns when it is awaitable). Declared `async`,
    # each project of a 1,000-project listing cost a coroutine, a shield and a future.
    @strawberry.field(description="Releases, newest first.")
    def applications(
        self, info: strawberry.Info, first: int = APPLICATIONS_PAGE, offset: int = 0
    ) -> list[ApplicationType]:
        projects.check_page(first, offset, get_settings().applications_page_max)
        key = (self.model.id, first, offset, columns_for(info))
        rows = loaded(info.context.loaders.applications, key)
        if isinstance(rows, list):
            return [ApplicationType.of_row(row, self.name) for row in rows]
        return _then(rows, lambda rows: [ApplicationType.of_row(r, self.name) for r in rows])

    @strawberry.field(description="The project's containers as the engine reports them.")
    async def processes(self) -> list[ProcessInfo]:
        from backend.services.applications.deployer import get_deployer

        containers = await get_deployer().pomegranate.list_processes(self.name)
        return ProcessInfo.all_of(containers)

    @strawberry.field(description="The add-ons attached to the project (issue 15).")
    async def addons(self) -> list[AddonType]:
        return [AddonType.of(a) for a in await addons.addons_of(self.model)]

    @strawberry.field
    async def application_count(self) -> int:
        return await projects.count_applications(self.model)

    @strawberry.field(
        description="What the project serves now: RUNNING only when a live release has web "
        "replicas (its URL answers); IDLE when live with 0 web replicas."
    )
    async def state(self, info: strawberry.Info) -> ProjectState:
        row = loaded(info.context.loaders.live_application, (self.model.id, STATE_COLUMNS))
        if row is not None and not isinstance(row, dict):
            row = await row
        if row:
            live = (_STATUS[row["status"]], json_of(row["replicas"]))
            return serving.project_state(live, None)
        latest = await column(
            models.Application.filter(project_id=self.model.id).order_by("-number").limit(1),
            "status",
        )
        return serving.project_state(None, models.ApplicationStatus(latest[0]) if latest else None)

    @strawberry.field(description="The release serving traffic, if any.")
    def live_application(self, info: strawberry.Info) -> ApplicationType | None:
        row = loaded(info.context.loaders.live_application, (self.model.id, columns_for(info)))
        if row is None or isinstance(row, dict):
            return ApplicationType.of_row(row, self.name) if row else None
        return _then(row, lambda r: ApplicationType.of_row(r, self.name) if r else None)

    @classmethod
    def of(cls, project: models.Project) -> ProjectType:
        return cls(model=project, name=project.name, created_at=project.created_at)

    @classmethod
    async def list_of(cls, owned: list[models.Project], info: strawberry.Info) -> list[ProjectType]:
        """The projects of a listing, with the releases its query asks of each loaded at once."""
        await _prefetch_releases(info, [p.id for p in owned])
        return [cls.of(p) for p in owned]


def _then(value: Awaitable[T], convert: Callable[[T], R]) -> R:
    """``convert`` of the awaited value, as an awaitable; typed as the value a resolver declares
    (graphql-core awaits it)."""

    async def later() -> R:
        return convert(await value)

    return later()  # type: ignore[return-value]  # a coroutine, typed as its value (see above)


async def _prefetch_releases(info: strawberry.Info, project_ids: list[int]) -> None:
    """Load `applications(...)`, `liveApplication` and `state` of every listed project in one
    query each (the live release's keys share one), before graphql-core resolves them object by
    object (they then resolve without waiting).

    The keys are the resolvers' own: the arguments, the columns of the selection
    (release_columns.py). A key they do not ask for only costs its query."""
    if not project_ids:
        return
    raw = info._raw_info
    loaders = info.context.loaders
    max_page = get_settings().applications_page_max
    pending = []
    # Strawberry gives resolvers the coerced dict, not graphql-core's VariableValues.
    given: Any = raw.variable_values
    variables: dict[str, Any] = getattr(given, "coerced", given)
    for name, nodes in release_fields(raw.field_nodes, raw.fragments):
        columns = columns_of(nodes, raw.fragments)
        if name == "applications":
            first = _int_argument(nodes[0], "first", APPLICATIONS_PAGE, variables)
            offset = _int_argument(nodes[0], "offset", 0, variables)
            # A page the resolver refuses is not loaded: the resolver reports the error.
            if first is not None and offset is not None and 1 <= first <= max_page and offset >= 0:
                keys = [(i, first, offset, columns) for i in project_ids]
                pending.append(loaders.applications.load_many(keys))
        else:  # liveApplication, or state (its live release's status and replicas)
            columns = columns if name == "liveApplication" else STATE_COLUMNS
            pending.append(loaders.live_application.load_many([(i, columns) for i in project_ids]))
    if pending:
        # A failure stays in the loaders' futures: each field then reports it, as unprefetched.
        await asyncio.gather(*pending, return_exceptions=True)


def _int_argument(
    node: FieldNode, name: str, default: int, variables: dict[str, Any]
) -> int | None:
    """An Int argument of ``node``: its literal, its variable's value, else the default. Only a
    guess of what to prefetch: the resolver checks what it receives."""
    found = next((a.value for a in node.arguments or () if a.name.value == name), None)
    if found is None:
        return default
    if isinstance(found, IntValueNode):
        return int(found.value)
    if isinstance(found, VariableNode):
        value = variables.get(found.name.value, default)
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


@strawberry.type(name="SSHKey")
class SSHKeyType:
    id: strawberry.ID
    title: str
    fingerprint: str
    public_key: str
    created_at: datetime

    @classmethod
    def of(cls, key: models.SSHKey) -> SSHKeyType:
        return cls(
            id=strawberry.ID(str(key.id)),
            title=key.title,
            fingerprint=key.fingerprint,
            public_key=key.public_key,
            created_at=key.created_at,
        )


@strawberry.enum
class TokenKind(Enum):
    SESSION = "session"
    API = "api"


@strawberry.type(name="ApiToken")
class ApiTokenType:
    id: strawberry.ID
    name: str
    kind: TokenKind
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, token: models.ApiToken) -> ApiTokenType:
        return cls(
            id=strawberry.ID(str(token.id)),
            name=token.name,
            kind=TokenKind(token.kind),
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
        )


@strawberry.type(name="Quota", description="One quota of the calling Client (issue 11).")
class QuotaType:
    name: str = strawberry.field(
        description="projects, replicas, memory_mb, cpu, build_minutes_per_hour, repository_mb "
        "(each repository), image_mb_per_project (each image), build_log_lines (per build), "
        "runtime_log_lines_per_second (per log stream), volumes_per_project, volume_mb (space "
        "used by all the Client's volumes, add-on data volumes included)."
    )
    limit: float
    used: float = strawberry.field(
        description="Current usage; for the per-repository quota the largest repository, for "
        "build_log_lines the last build's lines, for volumes_per_project the project with the "
        "most; 0 for quotas enforced per image or per stream; -1 when unknown right now."
    )


@strawberry.type(name="Client")
class ClientType:
    model: strawberry.Private[models.Client]
    id: strawberry.ID
    email: str
    username: str
    created_at: datetime

    @strawberry.field
    async def projects(self, info: strawberry.Info) -> list[ProjectType]:
        return await ProjectType.list_of(await projects.list_projects(self.model), info)

    @strawberry.field(description="Limits and current usage of every quota of this Client.")
    async def quotas(self) -> list[QuotaType]:
        from backend.services.applications.deployer import get_deployer

        try:
            volume_mb = await volumes.used_mb(get_deployer().pomegranate, self.model)
        except Unavailable:  # only Pomegranate knows volume sizes: unknown for now
            volume_mb = -1.0
        return [
            QuotaType(name=q.name, limit=q.limit, used=q.used)
            for q in await quotas.usage(self.model, volume_mb=volume_mb)
        ]

    @classmethod
    def of(cls, client: models.Client) -> ClientType:
        return cls(
            model=client,
            id=strawberry.ID(str(client.id)),
            email=client.email,
            username=client.username,
            created_at=client.created_at,
        )


@strawberry.type
class AuthPayload:
    token: str = strawberry.field(description="Bearer token; shown once, only its hash is kept.")
    expires_at: datetime | None
    client: ClientType


@strawberry.type
class CreatedApiToken:
    token: str = strawberry.field(description="Shown once, only its hash is kept.")
    api_token: ApiTokenType


@strawberry.type
class DeletedProject:
    name: str


@strawberry.input
class EnvVarInput:
    key: str
    value: str


@strawberry.type
class ProjectEvent:
    kind: ProjectEventKind
    project: str
    message: str | None
    application_number: int | None
    status: ApplicationStatus | None
    at: datetime

    @classmethod
    def of(cls, event: Event) -> ProjectEvent | None:
        """The event as clients see it; None for an internal one (backend/api/event_kinds.py)."""
        kind = public_kind(event.kind)
        if kind is None:
            return None
        p = event.payload
        return cls(
            kind=kind,
            project=p["project"],
            message=p.get("message"),
            application_number=p.get("number"),
            status=p.get("status"),
            at=event.at,
        )


@strawberry.type
class ProcessInfo:
    process_type: str
    replica: int
    application: int
    state: str
    running: bool
    restart_count: int
    exit_code: int | None
    oom_killed: bool
    started_at: str | None
    host_port: int | None = strawberry.field(
        description="The 127.0.0.1 port the web port is published on (web, while running)."
    )

    @classmethod
    def all_of(cls, containers: list[pt.Container]) -> list[ProcessInfo]:
        return [
            cls(
                process_type=c.process,
                replica=c.replica,
                application=c.application,
                state=c.state,
                running=c.running,
                restart_count=c.restart_count,
                exit_code=c.exit_code if not c.running else None,
                oom_killed=c.oom_killed,
                started_at=c.started_at or None,
                host_port=c.host_port or None,
            )
            for c in sorted(containers, key=lambda c: (c.process, c.replica, c.application))
        ]


@strawberry.type
class LogLine:
    seq: int
    line: str


@strawberry.type
class StatusChangeType:
    status: ApplicationStatus
    message: str | None
    at: datetime


@strawberry.type
class ApplicationStatusEvent:
    project: str
    number: int
    status: ApplicationStatus
    message: str | None
    at: datetime

    finished: bool = _status_group(app_status.FINISHED, "It will not build or deploy again")
    live: bool = _status_group(app_status.LIVE, "It is what the project serves now")
    failed: bool = _status_group(app_status.FAILED, "It went wrong: it never ran or it crashed")


@strawberry.type
class RuntimeLogLine:
    process_type: str
    replica: int
    application: int
    line: str
