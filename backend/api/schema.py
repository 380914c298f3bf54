"""The GraphQL schema: queries, mutations, subscriptions. Resolvers stay thin over services."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.types import Info

from backend.api.context import Context, require_client, require_token
from backend.api.extensions import ErrorCodes
from backend.api.types import (
    ApiTokenType,
    ApplicationType,
    AuthPayload,
    ClientType,
    CreatedApiToken,
    DeletedProject,
    EnvVarInput,
    ProjectEvent,
    ProjectType,
    SSHKeyType,
)
from backend.errors import NotFound
from backend.events import Event, EventKind, get_bus, project_topic
from backend.services import accounts, config, keys, projects
from backend.settings import Settings, get_settings


def _id(value: strawberry.ID) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotFound("not found", field="id") from None


@strawberry.type
class Query:
    @strawberry.field(description="The calling Client.")
    def me(self, info: Info) -> ClientType:
        return ClientType.of(require_client(info))

    @strawberry.field
    async def projects(self, info: Info) -> list[ProjectType]:
        return [ProjectType.of(p) for p in await projects.list_projects(require_client(info))]

    @strawberry.field
    async def project(self, info: Info, name: str) -> ProjectType:
        return ProjectType.of(await projects.get_owned(require_client(info), name))

    @strawberry.field
    async def application(self, info: Info, project: str, number: int) -> ApplicationType:
        app = await projects.get_application(require_client(info), project, number)
        return ApplicationType.of(app, project)

    @strawberry.field
    async def ssh_keys(self, info: Info) -> list[SSHKeyType]:
        return [SSHKeyType.of(k) for k in await keys.list_keys(require_client(info))]

    @strawberry.field
    async def api_tokens(self, info: Info) -> list[ApiTokenType]:
        return [ApiTokenType.of(t) for t in await accounts.list_tokens(require_client(info))]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create an account and log in.")
    async def signup(self, info: Info, email: str, username: str, password: str) -> AuthPayload:
        client = await accounts.signup(email, username, password)
        issued = await accounts.login(client.username, password, info.context.remote_addr)
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
        project = await projects.delete_project(require_client(info), name)
        return DeletedProject(name=project.name)

    @strawberry.mutation(description="Set several env vars at once; all or nothing.")
    async def set_env_vars(self, info: Info, project: str, vars: list[EnvVarInput]) -> ProjectType:
        values: dict[str, str] = {}
        for item in vars:
            values[item.key] = item.value
        return ProjectType.of(await config.set_env_vars(require_client(info), project, values))

    @strawberry.mutation
    async def unset_env_vars(self, info: Info, project: str, keys: list[str]) -> ProjectType:
        return ProjectType.of(await config.unset_env_vars(require_client(info), project, keys))

    @strawberry.mutation
    async def add_domain(self, info: Info, project: str, hostname: str) -> ProjectType:
        domain = await config.add_domain(require_client(info), project, hostname)
        return ProjectType.of(await domain.project)

    @strawberry.mutation
    async def remove_domain(self, info: Info, project: str, hostname: str) -> ProjectType:
        domain = await config.remove_domain(require_client(info), project, hostname)
        return ProjectType.of(await domain.project)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Changes to a project: env vars, domains, releases and their status. "
        "The first event is SUBSCRIBED."
    )
    async def project_events(self, info: Info, project: str) -> AsyncGenerator[ProjectEvent, None]:
        owned = await projects.get_owned(require_client(info), project)
        async with get_bus().subscribe(project_topic(owned.id)) as events:
            yield ProjectEvent.of(
                Event(topic="", kind=EventKind.SUBSCRIBED, payload={"project": owned.name})
            )
            async for event in events:
                yield ProjectEvent.of(event)
                if event.kind == EventKind.PROJECT_DELETED:
                    return


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or get_settings()
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            ErrorCodes(),
            QueryDepthLimiter(max_depth=settings.max_query_depth),
            MaxTokensLimiter(max_token_count=settings.max_query_tokens),
            MaxAliasesLimiter(max_alias_count=20),
            ParserCache(maxsize=256),
            ValidationCache(maxsize=256),
        ],
    )


__all__ = ["Context", "Mutation", "Query", "Subscription", "build_schema"]
