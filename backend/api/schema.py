"""The GraphQL schema: queries, mutations, subscriptions. Resolvers stay thin over services."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types import Info

from backend import routing
from backend.alerts import webhooks
from backend.api.activity_types import ActivityType, SessionType
from backend.api.addon_types import (
    AddonBackupType,
    AddonLogLineType,
    AddonStatusEventType,
    AddonType,
    check_last,
)
from backend.api.alert_types import WebhookType
from backend.api.context import Context, require_client, require_token
from backend.api.event_kinds import ProjectEventKind
from backend.api.execution import LeafFastExecutionContext
from backend.api.extensions import ErrorCodes, RejectNul
from backend.api.limits import OneAuthMutation, QueryCost, subscription_slot
from backend.api.metrics_types import MetricsUpdate, ProjectMetrics
from backend.api.node_types import NodeType
from backend.api.operator import require_operator
from backend.api.payload_types import (
    AddonAttachmentPayload,
    ConfigChangePayload,
    VolumeRemovalPayload,
    release_of,
)
from backend.api.types import (
    ApiTokenType,
    ApplicationStatusEvent,
    ApplicationType,
    AuthPayload,
    ClientType,
    CreatedApiToken,
    DeletedProject,
    EnvVarInput,
    LogLine,
    ProcessInfo,
    ProjectEvent,
    ProjectType,
    RuntimeLogLine,
    SSHKeyType,
    VolumeType,
)
from backend.db.models import AddonAttachment, Application, ApplicationStatus
from backend.errors import NotFound, ValidationFailed
from backend.events import (
    EventKind,
    activity_topic,
    addon_topic,
    get_bus,
    metrics_topic,
    project_topic,
)
from backend.metrics import queries as metrics
from backend.services import (
    accounts,
    activity,
    addon_backups,
    addon_status,
    addons,
    config,
    keys,
    projects,
    quotas,
    volumes,
)
from backend.services import (
    nodes as node_ops,
)
from backend.services.applications import config_changes
from backend.services.applications.buildlog import follow_build_log
from backend.services.applications.deployer import get_deployer
from backend.settings import Settings, get_settings


async def _attachment_payload(
    attachment: AddonAttachment, app: Application | None
) -> AddonAttachmentPayload:
    owned = await attachment.project
    return AddonAttachmentPayload(
        addon=AddonType.of(await attachment.addon),
        project=ProjectType.of(owned),
        application=release_of(app, owned),
    )


def _id(value: strawberry.ID, field: str = "id") -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotFound("not found", field=field) from None


@strawberry.type
class Query:
    @strawberry.field(description="The calling Client.")
    def me(self, info: Info) -> ClientType:
        return ClientType.of(require_client(info))

    @strawberry.field
    async def projects(self, info: Info) -> list[ProjectType]:
        return await ProjectType.list_of(await projects.list_projects(require_client(info)), info)

    @strawberry.field
    async def project(self, info: Info, name: str) -> ProjectType:
        return ProjectType.of(await projects.get_owned(require_client(info), name))

    @strawberry.field
    async def application(self, info: Info, project: str, number: int) -> ApplicationType:
        app = await projects.get_application(require_client(info), project, number)
        return ApplicationType.of(app, project)

    @strawberry.field
    async def addons(self, info: Info) -> list[AddonType]:
        return [AddonType.of(a) for a in await addons.list_addons(require_client(info))]

    @strawberry.field(description="One of the calling Client's add-ons, by name.")
    async def addon(self, info: Info, name: str) -> AddonType:
        return AddonType.of(await addons.get_owned_addon(require_client(info), name))

    @strawberry.field(
        description="Every backup of the calling Client's add-ons, newest first, including "
        "the final backups of removed ones."
    )
    async def addon_backups(self, info: Info) -> list[AddonBackupType]:
        found = await addon_backups.list_client_backups(require_client(info))
        return [AddonBackupType.of(b) for b in found]

    @strawberry.field(
        description="A project's metrics over `range` (15m, 1h, 6h: 10 s points; 24h, 7d, 30d: "
        "5 min points): CPU, memory and its limit, network and restarts per process type; "
        "requests, status classes and latency percentiles from the ingress."
    )
    async def metrics(self, info: Info, project: str, range: str = "1h") -> ProjectMetrics:
        owned, series = await metrics.project_metrics(require_client(info), project, range)
        return ProjectMetrics.of(owned.name, range, series)

    @strawberry.field(description="A project's alert webhooks, with their delivery logs.")
    async def webhooks(self, info: Info, project: str) -> list[WebhookType]:
        return [WebhookType.of(w) for w in await webhooks.list_for(require_client(info), project)]

    @strawberry.field
    async def ssh_keys(self, info: Info) -> list[SSHKeyType]:
        return [SSHKeyType.of(k) for k in await keys.list_keys(require_client(info))]

    @strawberry.field
    async def api_tokens(self, info: Info) -> list[ApiTokenType]:
        return [ApiTokenType.of(t) for t in await accounts.list_tokens(require_client(info))]

    @strawberry.field(description="The Swarm's nodes (operator only: X-PaaSTech-Operator-Token).")
    async def nodes(self, info: Info) -> list[NodeType]:
        require_operator(info)
        return [NodeType.of(n) for n in await node_ops.list_nodes(get_deployer().pomegranate)]

    @strawberry.field(
        description="The command a machine runs to join the Swarm as a worker (operator only)."
    )
    async def node_join_command(self, info: Info) -> str:
        require_operator(info)
        return await node_ops.join_command(get_deployer().pomegranate)

    @strawberry.field(
        description="Your activity feed, newest first: every project's, or one project's. "
        "`after`: the id of the last record of the previous page."
    )
    async def activity(
        self,
        info: Info,
        project: str | None = None,
        first: int = 50,
        after: strawberry.ID | None = None,
    ) -> list[ActivityType]:
        client = require_client(info)
        owned = await projects.get_owned(client, project) if project is not None else None
        rows = await activity.list_activity(
            client, owned, first, _id(after, "after") if after is not None else None
        )
        return [ActivityType.of(r) for r in rows]

    @strawberry.field(
        description="Your login sessions that can still be used, the most recently used first."
    )
    async def sessions(self, info: Info) -> list[SessionType]:
        client = require_client(info)
        current = info.context.token
        return [SessionType.of(t, current) for t in await accounts.list_sessions(client)]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create an account and log in.")
    async def signup(self, info: Info, email: str, username: str, password: str) -> AuthPayload:
        client = await accounts.signup(email, username, password, info.context.remote_addr)
        issued = await accounts.start_session(client)
        return AuthPayload(
            token=issued.token, expires_at=issued.record.expires_at, client=ClientType.of(client)
        )

    @strawberry.mutation(description="Email or username + password -> a session token.")
    async def login(self, info: Info, login: str, password: str) -> AuthPayload:
        issued = await accounts.login(login, password, info.context.remote_addr)
        client = await issued.record.client
        return AuthPayload(
            token=issued.token, expires_at=issued.record.expires_at, client=ClientType.of(client)
        )

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def logout(self, info: Info) -> bool:
        await accounts.logout(require_token(info))
        return True

    @strawberry.mutation(description="Change your password (the current one is asked again).")
    async def change_password(
        self, info: Info, current_password: str, new_password: str
    ) -> ClientType:
        client = await accounts.change_password(
            require_client(info), current_password, new_password, keep=info.context.token
        )
        return ClientType.of(client)

    @strawberry.mutation(description="Log one of your sessions (a device) out.")
    async def revoke_session(self, info: Info, id: strawberry.ID) -> SessionType:
        revoked = await accounts.revoke_session(require_client(info), _id(id))
        return SessionType.of(revoked, info.context.token)

    @strawberry.mutation(
        description="Delete your account with its projects (containers, images, repositories), "
        "keys and tokens. `confirm` is your username or email; the password is asked again."
    )
    async def delete_account(self, info: Info, password: str, confirm: str) -> ClientType:
        client = require_client(info)
        await accounts.check_password(client, password)
        if confirm.strip() not in (client.username, client.email):
            raise ValidationFailed(
                f"confirmation {confirm[:40]!r} is neither your username nor your email",
                field="confirm",
            )
        for project in await projects.list_projects(client):
            await get_deployer().remove_project(project)
            await projects.delete_project(client, project.name)
        await addons.remove_all_of(client)  # servers, volumes and backup files
        await routing.publish()
        await client.delete()  # cascades to keys and tokens
        return ClientType.of(client)

    @strawberry.mutation
    async def create_api_token(
        self, info: Info, name: str, expires_in_days: int | None = None
    ) -> CreatedApiToken:
        issued = await accounts.create_api_token(require_client(info), name, expires_in_days)
        return CreatedApiToken(token=issued.token, api_token=ApiTokenType.of(issued.record))

    @strawberry.mutation
    async def revoke_api_token(self, info: Info, id: strawberry.ID) -> ApiTokenType:
        return ApiTokenType.of(await accounts.revoke_token(require_client(info), _id(id)))

    @strawberry.mutation
    async def add_ssh_key(
        self, info: Info, public_key: str, title: str | None = None
    ) -> SSHKeyType:
        return SSHKeyType.of(await keys.add_key(require_client(info), public_key, title))

    @strawberry.mutation
    async def remove_ssh_key(self, info: Info, id: strawberry.ID) -> SSHKeyType:
        return SSHKeyType.of(await keys.remove_key(require_client(info), _id(id)))

    @strawberry.mutation
    async def create_project(self, info: Info, name: str) -> ProjectType:
        return ProjectType.of(await projects.create_project(require_client(info), name))

    @strawberry.mutation
    async def delete_project(self, info: Info, name: str) -> DeletedProject:
        owned = await projects.get_owned(require_client(info), name)
        await get_deployer().remove_project(owned)
        project = await projects.delete_project(require_client(info), name)
        await routing.publish()  # its custom domains went with it
        return DeletedProject(name=project.name)

    @strawberry.mutation(description="Build and release the project's current source again.")
    async def deploy(self, info: Info, project: str) -> ApplicationType:
        owned = await projects.get_owned(require_client(info), project)
        return ApplicationType.of(await get_deployer().redeploy(owned), project)

    @strawberry.mutation(
        description="Release an earlier release's image and env vars again, as a new release. "
        "Without a number: the release before the live one."
    )
    async def rollback(
        self, info: Info, project: str, number: int | None = None
    ) -> ApplicationType:
        owned = await projects.get_owned(require_client(info), project)
        return ApplicationType.of(await get_deployer().rollback(owned, number), project)

    @strawberry.mutation(description="Replace every container of the live release (new release).")
    async def restart(self, info: Info, project: str) -> ApplicationType:
        owned = await projects.get_owned(require_client(info), project)
        return ApplicationType.of(await get_deployer().restart(owned), project)

    @strawberry.mutation(
        description="Restart the containers of one process type of the live release, or one "
        "replica of it, in place and one at a time (no new release). Answers the restarted "
        "processes."
    )
    async def restart_processes(
        self, info: Info, project: str, process_type: str, replica: int | None = None
    ) -> list[ProcessInfo]:
        owned = await projects.get_owned(require_client(info), project)
        restarted = await get_deployer().restart_processes(owned, process_type, replica)
        return ProcessInfo.all_of(restarted)

    @strawberry.mutation(description="Set the replicas of a process type (releases if running).")
    async def scale(
        self, info: Info, project: str, process_type: str, replicas: int
    ) -> ConfigChangePayload:
        owned = await projects.get_owned(require_client(info), project)
        app = await config_changes.scale(owned, process_type, replicas)
        return ConfigChangePayload.of(owned, app)

    @strawberry.mutation(description="Set memory (MB) and/or CPU limits (releases if running).")
    async def set_resources(
        self, info: Info, project: str, memory_mb: int | None = None, cpu: float | None = None
    ) -> ConfigChangePayload:
        owned = await projects.get_owned(require_client(info), project)
        app = await config_changes.set_resources(owned, memory_mb, cpu)
        return ConfigChangePayload.of(owned, app)

    @strawberry.mutation(
        description="The app's PORT, its health check path, the branch whose pushes deploy, "
        "HSTS on its HTTPS answers. A new release follows when PORT, the health check or HSTS "
        "changes."
    )
    async def update_project_settings(
        self,
        info: Info,
        project: str,
        port: int | None = None,
        health_check_path: str | None = None,
        deploy_branch: str | None = None,
        hsts: bool | None = None,
    ) -> ConfigChangePayload:
        owned = await projects.get_owned(require_client(info), project)
        app = await config_changes.update_settings(
            owned,
            port=port,
            health_check_path=health_check_path,
            deploy_branch=deploy_branch,
            hsts=hsts,
        )
        return ConfigChangePayload.of(owned, app)

    @strawberry.mutation(
        description="Stop every container; the release is kept for start. Refused with CONFLICT "
        "(field project) while a release is in progress (queued, building or deploying): it "
        "would go live after the stop and undo it; stop once it has finished."
    )
    async def stop(self, info: Info, project: str) -> ApplicationType:
        owned = await projects.get_owned(require_client(info), project)
        return ApplicationType.of(await get_deployer().stop_project(owned), project)

    @strawberry.mutation(description="Start the last stopped release again (new release).")
    async def start(self, info: Info, project: str) -> ApplicationType:
        owned = await projects.get_owned(require_client(info), project)
        return ApplicationType.of(await get_deployer().start_project(owned), project)

    @strawberry.mutation(description="Set several env vars at once; all or nothing.")
    async def set_env_vars(
        self, info: Info, project: str, vars: list[EnvVarInput]
    ) -> ConfigChangePayload:
        values: dict[str, str] = {}
        for item in vars:
            values[item.key] = item.value
        changed, app = await config_changes.set_env(require_client(info), project, values)
        return ConfigChangePayload.of(changed, app)

    @strawberry.mutation(description="Unset env vars; a new release follows when the project runs.")
    async def unset_env_vars(
        self, info: Info, project: str, keys: list[str]
    ) -> ConfigChangePayload:
        changed, app = await config_changes.unset_env(require_client(info), project, keys)
        return ConfigChangePayload.of(changed, app)

    @strawberry.mutation(
        description="Add a persistent volume mounted at mountPath in every replica of the "
        "process types (default: web); a new release follows when the project runs."
    )
    async def add_volume(
        self,
        info: Info,
        project: str,
        mount_path: str,
        process_types: list[str] | None = None,
        name: str | None = None,
    ) -> ConfigChangePayload:
        deployer = get_deployer()
        volume = await volumes.add_volume(
            deployer.pomegranate, require_client(info), project, mount_path, process_types, name
        )
        owned = await volume.project
        app = await config_changes.volumes_changed(
            owned, f"volume: add {volume.name} at {volume.mount_path}"
        )
        return ConfigChangePayload.of(owned, app)

    @strawberry.mutation(
        description="Remove a volume and its data; confirm is the project's name. A new release "
        "without it follows when the project runs; the data goes once no container uses it."
    )
    async def remove_volume(
        self, info: Info, project: str, name: str, confirm: str
    ) -> VolumeRemovalPayload:
        get_deployer()  # refused before anything is removed when deployments are off
        volume = await volumes.remove_volume(require_client(info), project, name, confirm)
        owned = await volume.project
        app = await config_changes.volumes_changed(owned, f"volume: remove {volume.name}")
        view = volumes.VolumeView(
            volume.name, volume.mount_path, list(volume.process_types), 0, volume.created_at
        )
        return VolumeRemovalPayload(
            volume=VolumeType.of(view),
            project=ProjectType.of(owned),
            application=release_of(app, owned),
        )

    @strawberry.mutation(
        description="A new PostgreSQL or Redis add-on attached to the project (its URL in "
        "DATABASE_URL / REDIS_URL, a new release). kind: postgres or redis; plan: see "
        "Addon.memoryMb (default: the smallest)."
    )
    async def create_addon(
        self, info: Info, project: str, kind: str, plan: str | None = None
    ) -> AddonType:
        return AddonType.of(await addons.create_addon(require_client(info), project, kind, plan))

    @strawberry.mutation(
        description="Remove the add-on and its data; confirm with its name. A final backup is "
        "kept (see addonBackups)."
    )
    async def remove_addon(self, info: Info, name: str, confirm: str) -> AddonType:
        return AddonType.of(await addons.remove_addon(require_client(info), name, confirm))

    @strawberry.mutation(
        description="Attach the add-on to another project of yours (its config var set: a new "
        "release when the project runs)."
    )
    async def attach_addon(self, info: Info, name: str, project: str) -> AddonAttachmentPayload:
        attachment, app = await addons.attach_addon(require_client(info), name, project)
        return await _attachment_payload(attachment, app)

    @strawberry.mutation(description="Detach the add-on from a project (its config var unset).")
    async def detach_addon(self, info: Info, name: str, project: str) -> AddonAttachmentPayload:
        attachment, app = await addons.detach_addon(require_client(info), name, project)
        return await _attachment_payload(attachment, app)

    @strawberry.mutation(
        description="A new password for the add-on; every attached project gets a release."
    )
    async def rotate_addon_credentials(self, info: Info, name: str) -> AddonType:
        return AddonType.of(await addons.rotate_credentials(require_client(info), name))

    @strawberry.mutation(description="Take a backup of the add-on now.")
    async def backup_addon(self, info: Info, name: str) -> AddonBackupType:
        addon = await addons.get_owned_addon(require_client(info), name)
        return AddonBackupType.of(await addon_backups.capture(addon))

    @strawberry.mutation(
        description="Replace the add-on's data with a backup's (one of yours, of the same kind)."
    )
    async def restore_addon(
        self, info: Info, name: str, backup_id: strawberry.ID
    ) -> AddonBackupType:
        backup = await addon_backups.restore(require_client(info), name, _id(backup_id))
        return AddonBackupType.of(backup)

    @strawberry.mutation(
        description="Send the project's alerts (release failed or live, crash loop, OOM kill, "
        "memory above 90% of the limit for 5 minutes) as JSON POSTs with a Slack-compatible "
        "`text` to this http(s) URL."
    )
    async def add_webhook(self, info: Info, project: str, url: str) -> WebhookType:
        return WebhookType.of(await webhooks.add(require_client(info), project, url))

    @strawberry.mutation
    async def remove_webhook(self, info: Info, project: str, id: strawberry.ID) -> WebhookType:
        return WebhookType.of(await webhooks.remove(require_client(info), project, _id(id)))

    @strawberry.mutation
    async def add_domain(self, info: Info, project: str, hostname: str) -> ProjectType:
        domain = await config.add_domain(require_client(info), project, hostname)
        if domain.verified_at is not None:  # unverified: nothing is routed until verifyDomain
            await routing.publish()  # routing only: no release, no restarted container
        return ProjectType.of(await domain.project)

    @strawberry.mutation(
        description="Check the domain's TXT record (see Domain.verification); once found, the "
        "domain is verified and routed."
    )
    async def verify_domain(self, info: Info, project: str, hostname: str) -> ProjectType:
        domain = await config.verify_domain(require_client(info), project, hostname)
        await routing.publish()  # routing only: no release, no restarted container
        return ProjectType.of(await domain.project)

    @strawberry.mutation
    async def remove_domain(self, info: Info, project: str, hostname: str) -> ProjectType:
        domain = await config.remove_domain(require_client(info), project, hostname)
        if domain.verified_at is not None:  # an unverified one was never routed
            await routing.publish()  # routing only: no release, no restarted container
        return ProjectType.of(await domain.project)

    @strawberry.mutation(
        description="Drain a Swarm node: its tasks move to the other nodes; answers once none "
        "runs there (operator only)."
    )
    async def drain_node(self, info: Info, node: str) -> NodeType:
        require_operator(info)
        return NodeType.of(await node_ops.drain(get_deployer().pomegranate, node))

    @strawberry.mutation(description="Let the scheduler use a drained node again (operator only).")
    async def activate_node(self, info: Info, node: str) -> NodeType:
        require_operator(info)
        return NodeType.of(await node_ops.activate(get_deployer().pomegranate, node))

    @strawberry.mutation(description="Remove a drained worker from the Swarm (operator only).")
    async def remove_node(self, info: Info, node: str) -> bool:
        require_operator(info)
        await node_ops.remove(get_deployer().pomegranate, node)
        return True


@strawberry.type
class Subscription:
    # Each holds a subscription slot while it runs: capped per connection and per Client.

    @strawberry.subscription(
        description="Changes to a project: env vars, domains, releases and their status. "
        "The first event is SUBSCRIBED."
    )
    async def project_events(self, info: Info, project: str) -> AsyncGenerator[ProjectEvent, None]:
        client = require_client(info)
        owned = await projects.get_owned(client, project)
        with subscription_slot(info, client.id):
            async with get_bus().subscribe(project_topic(owned.id)) as events:
                yield ProjectEvent(
                    kind=ProjectEventKind.SUBSCRIBED,
                    project=owned.name,
                    message=None,
                    application_number=None,
                    status=None,
                    at=datetime.now(UTC),
                )
                async for event in events:
                    public = ProjectEvent.of(event)
                    if public is not None:  # internal plumbing stays on the server
                        yield public
                    if event.kind == EventKind.PROJECT_DELETED:
                        return

    @strawberry.subscription(
        description="Your activity as it is recorded (one project's, or all): first the "
        "newest record so far (if any), then each new one. Older records: the `activity` query."
    )
    async def activity_events(
        self, info: Info, project: str | None = None
    ) -> AsyncGenerator[ActivityType, None]:
        client = require_client(info)
        owned = await projects.get_owned(client, project) if project is not None else None
        with subscription_slot(info, client.id):
            async with get_bus().subscribe(activity_topic(client.id)) as events:
                newest = await activity.list_activity(client, owned, 1, None)
                if newest:
                    yield ActivityType.of(newest[0])
                async for event in events:
                    row = await activity.get_for(client.id, int(event.payload["id"]))
                    if row is None or (owned is not None and row.project_id != owned.id):
                        continue
                    yield ActivityType.of(row)

    @strawberry.subscription(
        description="Status changes of a project's releases; first the latest release's status."
    )
    async def application_status(
        self, info: Info, project: str
    ) -> AsyncGenerator[ApplicationStatusEvent, None]:
        client = require_client(info)
        owned = await projects.get_owned(client, project)
        kinds = (EventKind.APPLICATION_CREATED, EventKind.APPLICATION_STATUS)
        with subscription_slot(info, client.id):
            async with get_bus().subscribe(project_topic(owned.id)) as events:
                latest = await projects.list_applications(owned, first=1, offset=0, max_page=1)
                if latest:
                    app = latest[0]
                    yield ApplicationStatusEvent(
                        project=owned.name,
                        number=app.number,
                        status=app.status,
                        message=app.failure_reason,
                        at=app.finished_at or app.created_at,
                    )
                async for event in events:
                    if event.kind == EventKind.PROJECT_DELETED:
                        return
                    if event.kind in kinds:
                        p = event.payload
                        yield ApplicationStatusEvent(
                            project=owned.name,
                            number=p["number"],
                            status=ApplicationStatus(p["status"]),
                            message=p.get("message"),
                            at=event.at,
                        )

    @strawberry.subscription(
        description="A release's build and deploy log: every line so far, then live lines "
        "until the release finishes."
    )
    async def build_logs(
        self, info: Info, project: str, number: int
    ) -> AsyncGenerator[LogLine, None]:
        client = require_client(info)
        app = await projects.get_application(client, project, number)
        with subscription_slot(info, client.id):
            async for seq, line in follow_build_log(app):
                yield LogLine(seq=seq, line=line)

    @strawberry.subscription(
        description="Output of every running container of the project, labelled by process and "
        "replica: the last `tail` lines of each, then live output; with `follow: false` it "
        "completes after the last `tail` lines."
    )
    async def runtime_logs(
        self, info: Info, project: str, tail: int = 100, follow: bool = True
    ) -> AsyncGenerator[RuntimeLogLine, None]:
        client = require_client(info)
        owned = await projects.get_owned(client, project)
        if not 0 <= tail <= 10_000:
            raise ValidationFailed("tail must be between 0 and 10000", field="tail")
        # The Client's runtime log rate quota: lines beyond it are dropped, announced once a second.
        rate = quotas.LogRate(await quotas.limit_of(owned.owner_id, quotas.RUNTIME_LOG_RATE))
        with subscription_slot(info, client.id):
            async for line in get_deployer().pomegranate.runtime_logs(
                owned.name, tail, follow=follow
            ):
                verdict = rate.admit()
                if verdict == "drop":
                    continue
                yield RuntimeLogLine(
                    process_type=line.process,
                    replica=line.replica,
                    application=line.application,
                    line=rate.notice() if verdict == "notice" else line.line,
                )

    @strawberry.subscription(
        description="A project's new metrics points as they are stored (every 10 s while it runs)."
    )
    async def metrics_live(self, info: Info, project: str) -> AsyncGenerator[MetricsUpdate, None]:
        client = require_client(info)
        owned = await projects.get_owned(client, project)
        with subscription_slot(info, client.id):
            async with get_bus().subscribe(metrics_topic(owned.id)) as events:
                async for event in events:
                    yield MetricsUpdate.of(owned.name, event.payload)

    @strawberry.subscription(
        description="An add-on's status transitions: the last `last` so far, then live ones; "
        "ends after `removed`."
    )
    async def addon_status(
        self, info: Info, name: str, last: int = 20
    ) -> AsyncGenerator[AddonStatusEventType, None]:
        client = require_client(info)
        addon = await addons.get_owned_addon(client, name)
        check_last(last)
        with subscription_slot(info, client.id):
            async with get_bus().subscribe(addon_topic(addon.id)) as events:
                for change in await addon_status.history(addon, last):
                    yield AddonStatusEventType.of(addon, change)
                async for event in events:
                    if event.kind != EventKind.ADDON_STATUS:
                        continue
                    p = event.payload
                    yield AddonStatusEventType(
                        name=addon.name, status=p["status"], message=p["message"], at=event.at
                    )
                    if p["status"] == addon_status.REMOVED:
                        return

    @strawberry.subscription(
        description="Output of an add-on's server: the last `tail` lines, then live output "
        "until the server stops; with `follow: false` it completes after the last `tail` lines."
    )
    async def addon_logs(
        self, info: Info, name: str, tail: int = 100, follow: bool = True
    ) -> AsyncGenerator[AddonLogLineType, None]:
        client = require_client(info)
        addon = await addons.get_owned_addon(client, name)
        if not 0 <= tail <= 10_000:
            raise ValidationFailed("tail must be between 0 and 10000", field="tail")
        # The same runtime log rate quota as the apps' output.
        rate = quotas.LogRate(await quotas.limit_of(client.id, quotas.RUNTIME_LOG_RATE))
        with subscription_slot(info, client.id):
            async for line in addons.logs_of(addon, tail, follow):
                verdict = rate.admit()
                if verdict == "drop":
                    continue
                yield AddonLogLineType(line=rate.notice() if verdict == "notice" else line)


MAX_ALIASES = 20


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or get_settings()
    # The validation rules are made once. QueryDepthLimiter and MaxAliasesLimiter define a new
    # rule class per instance, and the ValidationCache is keyed by the rules too: made per
    # request, they made every request miss it and validate again (issue 17's profile).
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
        OneAuthMutation,
    ]
    # Factories: a fresh extension instance per request.
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        ErrorCodes,
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: QueryCost(settings),
        RejectNul,
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if not settings.development:
        # Production: the schema is published as schema.graphql, not probed through the API.
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        # Plain leaf fields read without graphql-core's per-field machinery (issue 17).
        execution_context_class=LeafFastExecutionContext,
    )


__all__ = ["Context", "Mutation", "Query", "Subscription", "build_schema"]
