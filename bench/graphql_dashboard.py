"""The web dashboard's query under load, against a plain Starlette handler doing the same SQL.

One Client owns PROJECTS projects of RELEASES releases each (SQLite, fresh data dir, normal
migrations); some projects' newest release failed, so the live release is not always the
newest, and one project has none. DASHBOARD asks, for every project, its live release and
its DASHBOARD_RELEASES newest releases with their status and creation time. Subjects,
measured one after the other under `--concurrency` clients (16 by default):

- baseline: bench/plain_app.py /dashboard: authenticate, list the projects, then one query
  for the newest releases of all of them and one for their live releases;
- the real API (`python -m backend api`), POST /graphql with DASHBOARD.

Both answers are compared before measuring (fails loudly if they differ); the SQL statements
and the time of one request alone are measured in-process as in bench/graphql_projects.py.
The ratio column is the API's against the baseline's; the notes add the p99 ratio.

`python -m bench.graphql_dashboard seed CLIENT_ID` is the seeding helper.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.graphql_projects import InProcessRequests, _account, _graphql_check, count_queries
from bench.load import LoadResult, run_load
from bench.plain_app import DASHBOARD_RELEASES
from bench.proc import free_port, platform_env, run_python, server
from bench.registry import BenchmarkFailed, Options, Row, register

NAME = "graphql-dashboard"
PROJECTS = 10
RELEASES = 12  # per project
DASHBOARD = (
    "{ projects { name "
    "liveApplication { number status createdAt } "
    f"applications(first: {DASHBOARD_RELEASES}) {{ number status createdAt }} }} }}"
)
BASELINE = "plain Starlette, same SQL"
API = "GraphQL POST /graphql"
REQUESTS: InProcessRequests = {
    API: ("api", "POST", "/graphql", {"query": DASHBOARD}),
    BASELINE: ("plain", "GET", "/dashboard", None),
}


@register(NAME, "dashboard query (10 projects, live + last 5 releases): p50/p99 vs plain handler")
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
    plain_cmd = [
        "-m", "uvicorn", "bench.plain_app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(plain_port),
        "--no-proxy-headers", "--log-level", "info",
    ]  # fmt: skip
    with server(["-m", "backend", "api"], env, f"{api}/healthz", data_dir / "api.log"):
        token, client_id = await _account(f"{api}/graphql")
        await asyncio.to_thread(
            run_python, ["-m", "bench.graphql_dashboard", "seed", str(client_id)], env
        )
        with server(plain_cmd, env, f"{plain}/healthz", data_dir / "plain.log"):
            auth = {"authorization": f"Bearer {token}"}
            subjects: list[tuple[str, dict[str, Any], bool]] = [
                (BASELINE, {"url": f"{plain}/dashboard"}, True),
                (
                    API,
                    {
                        "url": f"{api}/graphql",
                        "method": "POST",
                        "json": {"query": DASHBOARD},
                        "check": _graphql_check,
                    },
                    False,
                ),
            ]
            await _check_same_data(subjects, auth)
            counts = json.loads(
                await asyncio.to_thread(
                    run_python, ["-m", "bench.graphql_dashboard", "count-queries", token], env
                )
            )
            results = {}
            for subject, request, _ in subjects:
                results[subject] = await run_load(
                    **request,
                    headers=auth,
                    concurrency=opts.concurrency,
                    duration=opts.duration,
                    warmup=opts.warmup,
                )
            base = results[BASELINE]
            return [
                _row(subject, results[subject], baseline, counts[subject], base, opts)
                for subject, _, baseline in subjects
            ]


async def _check_same_data(
    subjects: list[tuple[str, dict[str, Any], bool]], auth: dict[str, str]
) -> None:
    answers = {}
    async with httpx.AsyncClient(timeout=60, headers=auth) as http:
        for subject, request, _ in subjects:
            response = await http.request(
                request.get("method", "GET"), request["url"], json=request.get("json")
            )
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                raise BenchmarkFailed(f"{subject}: {response.status_code} {str(body)[:500]}")
            answers[subject] = body["data"]["projects"]
    reference = answers[BASELINE]
    if len(reference) != PROJECTS:
        raise BenchmarkFailed(f"{BASELINE}: {len(reference)} projects, expected {PROJECTS}")
    for project in reference:
        numbers = [a["number"] for a in project["applications"]]
        if numbers != list(range(RELEASES, RELEASES - DASHBOARD_RELEASES, -1)):
            raise BenchmarkFailed(f"{BASELINE}: {project['name']} has releases {numbers}")
    if sum(p["liveApplication"] is None for p in reference) != 1:
        raise BenchmarkFailed(f"{BASELINE}: expected exactly one project without a live release")
    if answers[API] != reference:
        diff = next((a, b) for a, b in zip(reference, answers[API], strict=True) if a != b)
        raise BenchmarkFailed(f"{API} differs from {BASELINE}: {diff[1]} vs {diff[0]}")


def _row(
    subject: str,
    result: LoadResult,
    baseline: bool,
    counts: dict,
    base: LoadResult,
    opts: Options,
) -> Row:
    notes = [
        f"{opts.concurrency} concurrent clients",
        f"{counts['queries']} SQL/req",
        f"{counts['alone_ms']:.1f} ms alone",
        f"n={result.requests}",
    ]
    if not baseline and result.p99_ms and base.p99_ms:
        notes.insert(1, f"p99 x{result.p99_ms / base.p99_ms:.2f}")
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


def _status(project: int, number: int) -> str:
    """Release statuses: the newest running, or (every third project) the newest failed and the
    one before running; project 0 has no live release (its newest was stopped)."""
    if project == 0 and number == RELEASES:
        return "stopped"
    if project % 3 == 1:
        return {RELEASES: "failed", RELEASES - 1: "running"}.get(number, "superseded")
    return "running" if number == RELEASES else "superseded"


async def seed(client_id: int) -> None:
    """PROJECTS projects of the client, RELEASES releases each."""
    from tortoise.transactions import in_transaction

    from backend.db.config import close_db, init_db
    from backend.db.models import Application, ApplicationStatus, Project

    await init_db()
    try:
        now = datetime.now(UTC)
        async with in_transaction():
            for i in range(PROJECTS):
                project = await Project.create(
                    owner_id=client_id, name=f"dash-{i:02d}", replicas={"web": 1}
                )
                await Application.bulk_create(
                    [
                        Application(
                            project_id=project.id,
                            number=n,
                            cause=f"push {n:07x}",
                            commit_sha=f"{n:040x}",
                            image=f"paastech/app-{project.id}:v{n}",
                            status=ApplicationStatus(_status(i, n)),
                            replicas={"web": 1},
                            domains=[],
                            created_at=now - timedelta(minutes=RELEASES - n, seconds=i),
                            finished_at=now,
                        )
                        for n in range(1, RELEASES + 1)
                    ]
                )
    finally:
        await close_db()


def _main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "seed":
        asyncio.run(seed(int(argv[1])))
    elif len(argv) == 2 and argv[0] == "count-queries":
        print(json.dumps(asyncio.run(count_queries(argv[1], REQUESTS))))
    else:
        raise SystemExit(
            "usage: python -m bench.graphql_dashboard seed CLIENT_ID | count-queries TOKEN"
        )


if __name__ == "__main__":
    _main(sys.argv[1:])
