"""GraphQL `projects` listing against a plain Starlette handler doing the same database work.

One Client owns 1,000 projects of 3 applications each (SQLite, fresh data dir, normal
migrations). Subjects, measured one after the other under the same load:

- baseline: bench/plain_app.py /projects-batched, the database work the API now does (its
  resolvers batch applications with a DataLoader): authenticate, list the projects, then the
  newest applications of all projects in one windowed query (SQLite >= 3.25, the only
  database this benchmark uses);
- the real API (`python -m backend api`), POST /graphql with QUERY;
- informational: bench/plain_app.py /projects, one applications query per project (the N+1
  the API did before its DataLoader), to show what batching is worth. Its ratio is still
  against the baseline.

Before measuring, all three answers are compared (fails loudly if they differ), and the SQL
statements one request runs are counted in-process (`python -m bench.graphql_projects
count-queries TOKEN`, same code, through the ASGI apps), with the time one request takes
alone ("ms alone": the service time, without the queueing the load adds).

`python -m bench.graphql_projects seed CLIENT_ID` is the seeding helper (run with the
benchmark's PAASTECH_* environment).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.load import LoadResult, run_load
from bench.proc import free_port, platform_env, run_python, server
from bench.registry import BenchmarkFailed, Options, Row, register

NAME = "graphql-projects"
N_PLUS_ONE = "plain Starlette, N+1 (info)"
QUERY = "{ projects { name applications(first: 3) { number status } } }"
PROJECTS = 1000
APPS_PER_PROJECT = 3
USERNAME, EMAIL, PASSWORD = "bench", "bench@example.com", "Vr7!qL2#mZ9x-tortoise-lantern"

SIGNUP = """mutation($email: String!, $username: String!, $password: String!) {
  signup(email: $email, username: $username, password: $password) { client { id } }
}"""
LOGIN = """mutation($login: String!, $password: String!) {
  login(login: $login, password: $password) { token client { id } }
}"""


def _graphql_check(response: httpx.Response) -> str | None:
    # A 200 answer can still carry errors; they come after "data" in the body.
    return "GraphQL errors" if b'"errors":' in response.content else None


@register(NAME, "GraphQL projects+applications listing vs a plain Starlette handler")
async def run(opts: Options) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="paastech-bench-") as tmp:
        return await _run(opts, Path(tmp))


async def _run(opts: Options, data_dir: Path) -> list[Row]:
    api_port, plain_port = free_port(), free_port()
    env = platform_env(
        data_dir,
        api_port=api_port,
        login_max_failures_per_address=1_000_000,
        login_max_failures_per_account=1_000_000,
    )
    await asyncio.to_thread(run_python, ["-m", "backend", "migrate"], env)
    api = f"http://127.0.0.1:{api_port}"
    plain = f"http://127.0.0.1:{plain_port}"
    api_cmd = ["-m", "backend", "api"]
    plain_cmd = [
        "-m", "uvicorn", "bench.plain_app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(plain_port),
        "--no-proxy-headers", "--log-level", "info",
    ]  # fmt: skip
    with server(api_cmd, env, f"{api}/healthz", data_dir / "api.log"):
        token, client_id = await _account(f"{api}/graphql")
        await asyncio.to_thread(
            run_python, ["-m", "bench.graphql_projects", "seed", str(client_id)], env
        )
        with server(plain_cmd, env, f"{plain}/healthz", data_dir / "plain.log"):
            auth = {"authorization": f"Bearer {token}"}
            graphql = {"url": f"{api}/graphql", "method": "POST", "json": {"query": QUERY}}
            subjects: list[tuple[str, dict[str, Any], bool]] = [
                ("plain Starlette, batched apps", {"url": f"{plain}/projects-batched"}, True),
                ("GraphQL POST /graphql", {**graphql, "check": _graphql_check}, False),
                (N_PLUS_ONE, {"url": f"{plain}/projects"}, False),
            ]
            sizes = await _check_same_data(subjects, auth)
            counts = json.loads(
                await asyncio.to_thread(
                    run_python, ["-m", "bench.graphql_projects", "count-queries", token], env
                )
            )
            rows = []
            for subject, request, baseline in subjects:
                result = await run_load(
                    **request,
                    headers=auth,
                    concurrency=opts.concurrency,
                    duration=opts.duration,
                    warmup=opts.warmup,
                )
                rows.append(_row(subject, result, baseline, counts[subject], sizes[subject]))
            return rows


async def _account(graphql_url: str) -> tuple[str, int]:
    """Sign up the benchmark Client, then log in: (session token, client id)."""
    async with httpx.AsyncClient(timeout=60) as http:
        await _gql(http, graphql_url, SIGNUP, email=EMAIL, username=USERNAME, password=PASSWORD)
        data = await _gql(http, graphql_url, LOGIN, login=USERNAME, password=PASSWORD)
    return data["login"]["token"], int(data["login"]["client"]["id"])


async def _gql(http: httpx.AsyncClient, url: str, query: str, **variables: Any) -> dict:
    response = await http.post(url, json={"query": query, "variables": variables})
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise BenchmarkFailed(f"{query.split('(')[0].strip()}: {response.status_code} {body}")
    return body["data"]


async def _check_same_data(
    subjects: list[tuple[str, dict[str, Any], bool]], auth: dict[str, str]
) -> dict[str, int]:
    """Every subject answers the same projects and applications; response sizes in bytes."""
    answers: dict[str, list] = {}
    sizes: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=120, headers=auth) as http:
        for subject, request, _ in subjects:
            response = await http.request(
                request.get("method", "GET"), request["url"], json=request.get("json")
            )
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                raise BenchmarkFailed(f"{subject}: {response.status_code} {str(body)[:500]}")
            answers[subject] = body["data"]["projects"]
            sizes[subject] = len(response.content)
    expected_numbers = list(range(APPS_PER_PROJECT, 0, -1))
    for subject, projects in answers.items():
        if len(projects) != PROJECTS:
            raise BenchmarkFailed(f"{subject}: {len(projects)} projects, expected {PROJECTS}")
        for project in projects:
            numbers = [a["number"] for a in project["applications"]]
            if numbers != expected_numbers:
                raise BenchmarkFailed(
                    f"{subject}: project {project['name']} has releases {numbers}, "
                    f"expected {expected_numbers}"
                )
    (first, reference), *others = answers.items()
    for subject, projects in others:
        if projects != reference:
            diff = next((a, b) for a, b in zip(reference, projects, strict=True) if a != b)
            raise BenchmarkFailed(f"{subject} differs from {first}: {diff[1]} vs {diff[0]}")
    return sizes


def _row(subject: str, result: LoadResult, baseline: bool, counts: dict, size: int) -> Row:
    notes = [
        f"{counts['queries']} SQL/req ({counts['application']} on application)",
        f"{counts['alone_ms']:.0f} ms alone",
        f"{size / 1024:.0f} KiB/resp",
        f"n={result.requests}",
    ]
    if subject == N_PLUS_ONE:
        notes.insert(0, "informational: one apps query per project (no DataLoader)")
    if error := result.error_note():
        notes.append(error)
    return Row(
        benchmark=NAME,
        subject=subject,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        requests=result.requests,
        errors=result.errors,
        baseline=baseline,
        notes=notes,
    )


# --- helpers run as subprocesses with the benchmark's environment ---------------------------


async def seed(client_id: int) -> None:
    """PROJECTS projects for the client, APPS_PER_PROJECT applications each (newest running)."""
    from tortoise.transactions import in_transaction

    from backend.db.config import close_db, init_db
    from backend.db.models import Application, ApplicationStatus, Project

    await init_db()
    try:
        now = datetime.now(UTC)
        async with in_transaction():
            await Project.bulk_create(
                [
                    Project(
                        owner_id=client_id,
                        name=f"bench-{i:04d}",
                        replicas={"web": 1},
                        created_at=now,
                    )
                    for i in range(PROJECTS)
                ],
                batch_size=500,
            )
            ids = await Project.filter(owner_id=client_id).values_list("id", flat=True)
            apps = []
            for project_id in ids:
                for number in range(1, APPS_PER_PROJECT + 1):
                    newest = number == APPS_PER_PROJECT
                    apps.append(
                        Application(
                            project_id=project_id,
                            number=number,
                            cause=f"push {number:07x}",
                            commit_sha=f"{number:040x}",
                            image=f"paastech/app-{project_id}:v{number}",
                            status=ApplicationStatus.RUNNING
                            if newest
                            else ApplicationStatus.SUPERSEDED,
                            replicas={"web": 1},
                            domains=[],
                            created_at=now - timedelta(minutes=APPS_PER_PROJECT - number),
                            finished_at=now,
                        )
                    )
            await Application.bulk_create(apps, batch_size=500)
        count = await Application.filter(project__owner_id=client_id).count()
        if len(ids) != PROJECTS or count != PROJECTS * APPS_PER_PROJECT:
            raise SystemExit(f"seeded {len(ids)} projects and {count} applications")
    finally:
        await close_db()


class _QueryCounter(logging.Handler):
    """Counts the statements Tortoise sends (it logs each one on tortoise.db_client)."""

    TABLE = re.compile(r'\b(?:FROM|UPDATE|INTO)\s+"?(\w+)"?', re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tables: Counter[str] = Counter()
        self.total = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith(("Created connection", "Closed connection")):
            return
        self.total += 1
        if match := self.TABLE.search(text):
            self.tables[match.group(1)] += 1


# subject -> (app, method, path, JSON body): the requests count_queries measures.
InProcessRequests = dict[str, tuple[str, str, str, dict[str, Any] | None]]
REQUESTS: InProcessRequests = {
    "GraphQL POST /graphql": ("api", "POST", "/graphql", {"query": QUERY}),
    "plain Starlette, batched apps": ("plain", "GET", "/projects-batched", None),
    N_PLUS_ONE: ("plain", "GET", "/projects", None),
}


async def count_queries(
    token: str, requests: InProcessRequests = REQUESTS
) -> dict[str, dict[str, int]]:
    """SQL statements per request of each subject, through the ASGI apps in this process
    ("api": the API, "plain": bench/plain_app.py)."""
    from backend.api.app import create_app as create_api
    from backend.db.config import close_db, init_db
    from bench import plain_app

    log = logging.getLogger("tortoise.db_client")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    apps = {"api": create_api(), "plain": plain_app.create_app()}
    await init_db()  # what both lifespans do (ASGITransport does not run lifespans)
    out = {}
    try:
        for subject, (app, method, path, body) in requests.items():
            transport = httpx.ASGITransport(app=apps[app])
            headers = {"authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", headers=headers
            ) as http:
                await http.request(method, path, json=body)  # warm: token last-used stamp
                counter = _QueryCounter()
                log.addHandler(counter)
                try:
                    response = await http.request(method, path, json=body)
                finally:
                    log.removeHandler(counter)
                response.raise_for_status()
                # Service time alone (one request at a time, no logging handler, no HTTP).
                times = []
                for _ in range(3):
                    started = time.perf_counter()
                    (await http.request(method, path, json=body)).raise_for_status()
                    times.append((time.perf_counter() - started) * 1000)
            out[subject] = {
                "queries": counter.total,
                "application": counter.tables["application"],
                "alone_ms": statistics.median(times),
            }
    finally:
        await close_db()
    return out


def _main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "seed":
        asyncio.run(seed(int(argv[1])))
    elif len(argv) == 2 and argv[0] == "count-queries":
        print(json.dumps(asyncio.run(count_queries(argv[1]))))
    else:
        raise SystemExit(
            "usage: python -m bench.graphql_projects seed CLIENT_ID | count-queries TOKEN"
        )


if __name__ == "__main__":
    _main(sys.argv[1:])
