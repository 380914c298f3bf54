"""Baseline for the GraphQL projects benchmark: a plain Starlette JSON handler doing the same
database work as `{ projects { name applications(first: 3) { number status } } }`.

GET /projects          the same service calls as the resolvers: authenticate the bearer token,
                       list the client's projects, then each project's 3 newest applications
                       (one query per project, like the GraphQL resolver).
GET /projects-batched  the same answer with the applications of all projects in one query
                       (what a dataloader would bring), to show what N+1 costs.
GET /dashboard         the dashboard query of bench/graphql_dashboard.py: the client's projects,
                       each with its live release and its DASHBOARD_RELEASES newest releases
                       (number, status, createdAt), in one query for each of the two.
GET /healthz

Run with `uvicorn bench.plain_app:create_app --factory` and the same PAASTECH_* environment as
the API. Both answers have the GraphQL response's shape: {"data": {"projects": [...]}}.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from tortoise import connections

from backend.api.context import bearer_from_header
from backend.db.config import close_db, init_db
from backend.db.models import ApplicationStatus, Client
from backend.db.rows import datetime_of
from backend.services import accounts, projects
from backend.services.applications.status import LIVE
from backend.settings import get_settings

FIRST = 3
DASHBOARD_RELEASES = 5

# Newest FIRST applications of every project of one owner, in one statement.
_BATCHED_SQL = """
SELECT project_id, number, status FROM (
    SELECT a.project_id, a.number, a.status,
           ROW_NUMBER() OVER (PARTITION BY a.project_id ORDER BY a.number DESC) AS rn
    FROM application a JOIN project p ON p.id = a.project_id
    WHERE p.owner_id = ?
) WHERE rn <= ? ORDER BY project_id, number DESC
"""


# The dashboard's releases of every project of one owner: the newest N, and the live one.
_DASHBOARD_PAGE_SQL = """
SELECT project_id, number, status, created_at FROM (
    SELECT a.project_id, a.number, a.status, a.created_at,
           ROW_NUMBER() OVER (PARTITION BY a.project_id ORDER BY a.number DESC) AS rn
    FROM application a JOIN project p ON p.id = a.project_id
    WHERE p.owner_id = ?
) WHERE rn <= ? ORDER BY project_id, number DESC
"""
_DASHBOARD_LIVE_SQL = """
SELECT a.project_id, a.number, a.status, a.created_at
FROM application a JOIN project p ON p.id = a.project_id
WHERE p.owner_id = ? AND a.status IN (?, ?) ORDER BY a.number
"""


def _status(value: str) -> str:
    # GraphQL serializes enum values by name.
    return ApplicationStatus(value).name


async def _client(request: Request) -> Client | None:
    found = await accounts.authenticate(bearer_from_header(request.headers.get("authorization")))
    return found[0] if found else None


def _unauthenticated() -> JSONResponse:
    return JSONResponse({"errors": [{"message": "unauthenticated"}]}, status_code=401)


async def list_projects(request: Request) -> JSONResponse:
    client = await _client(request)
    if client is None:
        return _unauthenticated()
    max_page = get_settings().applications_page_max
    out = []
    for project in await projects.list_projects(client):
        apps = await projects.list_applications(project, first=FIRST, offset=0, max_page=max_page)
        out.append(
            {
                "name": project.name,
                "applications": [{"number": a.number, "status": _status(a.status)} for a in apps],
            }
        )
    return JSONResponse({"data": {"projects": out}})


async def list_projects_batched(request: Request) -> JSONResponse:
    client = await _client(request)
    if client is None:
        return _unauthenticated()
    owned = await projects.list_projects(client)
    rows = await connections.get("default").execute_query_dict(_BATCHED_SQL, [client.id, FIRST])
    by_project: dict[int, list[dict[str, object]]] = {p.id: [] for p in owned}
    for row in rows:
        apps = by_project.get(row["project_id"])
        if apps is not None:
            apps.append({"number": row["number"], "status": _status(row["status"])})
    out = [{"name": p.name, "applications": by_project[p.id]} for p in owned]
    return JSONResponse({"data": {"projects": out}})


def _release(row: dict[str, object]) -> dict[str, object]:
    created = datetime_of(row["created_at"])  # type: ignore[arg-type]
    return {
        "number": row["number"],
        "status": _status(str(row["status"])),
        "createdAt": created.isoformat() if created else None,
    }


async def dashboard(request: Request) -> JSONResponse:
    client = await _client(request)
    if client is None:
        return _unauthenticated()
    owned = await projects.list_projects(client)
    db = connections.get("default")
    page = await db.execute_query_dict(_DASHBOARD_PAGE_SQL, [client.id, DASHBOARD_RELEASES])
    live_statuses = [s.value for s in LIVE]
    live_rows = await db.execute_query_dict(_DASHBOARD_LIVE_SQL, [client.id, *live_statuses])
    releases: dict[int, list[dict[str, object]]] = {p.id: [] for p in owned}
    for row in page:
        if (found := releases.get(row["project_id"])) is not None:
            found.append(_release(row))
    live = {row["project_id"]: _release(row) for row in live_rows}  # the highest number wins
    out = [
        {"name": p.name, "liveApplication": live.get(p.id), "applications": releases[p.id]}
        for p in owned
    ]
    return JSONResponse({"data": {"projects": out}})


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def create_app() -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await init_db()
        try:
            yield
        finally:
            await close_db()

    return Starlette(
        routes=[
            Route("/projects", list_projects),
            Route("/projects-batched", list_projects_batched),
            Route("/dashboard", dashboard),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
