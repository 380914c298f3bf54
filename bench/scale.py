"""Scale on one box (issue 17): 100 small apps of 10 Clients on one platform, then measure.

Not in the default `make bench` run (the deploys take minutes): `python -m bench --only scale`.
`BENCH_SCALE_APPS` (default 100, a multiple of 10) sets the number of apps for a quicker look.

The platform runs as `make up` runs it (tests/support/supervised.py: runit on the Procfile,
SQLite, fresh data dir, periodic reconcile every RECONCILE_INTERVAL seconds). 10 Clients sign up;
each creates APPS/10 projects and deploys the `static` fixture (tests/fixtures/apps/static,
1 web replica) to each by push() (the tar handed to the API's internal Deployments gRPC, as gitd
does), DEPLOYS_IN_FLIGHT at a time. Every app must then answer through the ingress. Then:

- API: the web dashboard's query (bench/graphql_dashboard.py's DASHBOARD) of one Client (its
  APPS/10 projects) under 16 concurrent clients (--concurrency), --duration seconds after the
  --warmup. Target p99 < 100 ms.
- ingress: GET / through the embedded ingress, each request to the next of the APPS hosts in
  turn (so every route is used), 16 in flight, --duration seconds. p99 is reported with the
  number of routes.
- reconcile cycle: the API's periodic reconcile (desired state from the database, then
  Pomegranate's Reconcile over every container), from its "reconcile cycle" log line; the
  median and slowest of the cycles logged once all apps answer (at least 3, measured under the
  load above when they overlap). Target < 2 s.
- build queue wait: per release, QUEUED -> BUILDING from its statusHistory (waiting for a build
  slot; slots go round-robin between Clients). p50 / p99 over the APPS releases.
- platform RSS per app: the RSS of api + pomegranate + gitd + ingress (their process trees)
  after the deploys minus idle, over APPS. Target < 1 MB.

Every project is deleted at the end (deleteProject, then its containers and images by label), the
platform stopped, its instance's leftovers removed and the temporary directory deleted.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.deploy_latency import DEPLOY_TIMEOUT, POLL, Session
from bench.graphql_dashboard import DASHBOARD
from bench.load import LoadResult, run_load
from bench.platform_memory import PLATFORM, sample
from bench.registry import BenchmarkFailed, Options, Row, register

NAME = "scale (100 apps)"
CLIENTS = 10
RECONCILE_INTERVAL = 5
DEPLOYS_IN_FLIGHT = 10
API_TARGET_MS = 100.0
RECONCILE_TARGET_MS = 2000.0
RSS_TARGET_MB = 1.0
CYCLE = re.compile(r"reconcile cycle: (\d+) projects in ([\d.]+) ms")
HISTORY = """query($p: String!) { project(name: $p) {
  liveApplication { number status } applications(first: 1) { statusHistory { status at } } } }"""


def app_count() -> int:
    apps = int(os.environ.get("BENCH_SCALE_APPS", "100"))
    if apps < CLIENTS or apps % CLIENTS:
        raise BenchmarkFailed(f"BENCH_SCALE_APPS={apps}: a multiple of {CLIENTS}")
    return apps


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


async def deploy(s: Session, project: str, source: bytes, slots: asyncio.Semaphore) -> None:
    from tests.support.platform import push

    async with slots:
        outcome = await push(s.plat, s.client_id, project, source)
    if not outcome.ok:
        raise BenchmarkFailed(f"deploy of {project} failed: {outcome.reason}")


async def queue_wait_ms(s: Session, project: str) -> float:
    data = (await s.gql(HISTORY, p=project))["project"]
    live = data["liveApplication"]
    if not live or live["status"] != "RUNNING":
        raise BenchmarkFailed(f"{project} is not running: {live}")
    at = {h["status"]: h["at"] for h in data["applications"][0]["statusHistory"]}
    from datetime import datetime

    queued, building = (datetime.fromisoformat(at[k]) for k in ("QUEUED", "BUILDING"))
    return (building - queued).total_seconds() * 1000


async def all_answer(ingress_port: int, hosts: list[str]) -> None:
    """Every app answers 200 through the ingress (polled: the route follows RUNNING)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingress_port}", timeout=10) as http:
        async with asyncio.timeout(120):
            for host in hosts:
                while True:
                    if (await http.get("/", headers={"Host": host})).status_code == 200:
                        break
                    await asyncio.sleep(POLL)


async def ingress_load(port: int, hosts: list[str], opts: Options) -> LoadResult:
    """16 in flight through the ingress, each request to the next host in turn."""
    turn = itertools.cycle(hosts)
    limits = httpx.Limits(max_connections=opts.concurrency)
    result = LoadResult(requests=0, errors=0, elapsed=0.0, latencies_ms=[])
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:

        async def phase(seconds: float, measured: bool) -> None:
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    host = next(turn)
                    started = time.perf_counter()
                    try:
                        ok = (await http.get("/", headers={"Host": host})).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    if not measured:
                        continue
                    result.requests += 1
                    if ok:
                        result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    else:
                        result.errors += 1

            await asyncio.gather(*(worker() for _ in range(opts.concurrency)))

        await phase(opts.warmup, False)
        started = time.perf_counter()
        await phase(opts.duration, True)
        result.elapsed = time.perf_counter() - started
    return result


async def reconcile_cycles(log: Path, projects: int, since: int, want: int = 3) -> list[float]:
    """ms of the periodic reconcile cycles logged after offset `since` that covered every
    project (waits for `want`)."""
    async with asyncio.timeout(RECONCILE_INTERVAL * (want + 3) + 60):
        while True:
            text = (await asyncio.to_thread(_read, log))[since:]
            cycles = [float(ms) for n, ms in CYCLE.findall(text) if int(n) >= projects]
            if len(cycles) >= want:
                return cycles
            await asyncio.sleep(1)


def _read(log_dir: Path) -> str:
    """A program's whole log: svlogd's rotated files (named by time, oldest first), then current."""
    files = [*sorted(log_dir.glob("@*")), log_dir / "current"]
    return "".join(f.read_text(errors="replace") for f in files if f.exists())


def rss_mb(usage: dict, names: tuple[str, ...]) -> float:
    return sum(usage[n].rss for n in names) / 1024


@register(
    NAME, "100 static apps of 10 Clients: API p99, ingress p99, reconcile, RSS", default=False
)
async def scale(opts: Options) -> list[Row]:
    from tests.support.platform import fixture, tar_dir
    from tests.support.supervised import supervised

    apps = app_count()
    source = tar_dir(fixture("static"))
    with tempfile.TemporaryDirectory(prefix="paastech-bench-scale-") as tmp:
        data_dir = Path(tmp) / "platform"
        data_dir.mkdir()
        with supervised(
            data_dir,
            health_check_timeout_seconds=120,
            reconcile_interval_seconds=RECONCILE_INTERVAL,
        ) as sup:
            states = sup.states()
            pids = {n: states[n][1] for n in PLATFORM}
            idle = sample(sup.proc.pid, pids)
            async with httpx.AsyncClient(timeout=120) as http:
                sessions = [Session(sup.platform, http) for _ in range(CLIENTS)]
                try:
                    for s in sessions:
                        await s.signup()
                    owned = [
                        (s, await s.project()) for s in sessions for _ in range(apps // CLIENTS)
                    ]
                    slots = asyncio.Semaphore(DEPLOYS_IN_FLIGHT)
                    started = time.monotonic()
                    async with asyncio.timeout(DEPLOY_TIMEOUT * apps / DEPLOYS_IN_FLIGHT):
                        await asyncio.gather(*(deploy(s, p, source, slots) for s, p in owned))
                    deploys_took = time.monotonic() - started
                    hosts = [f"{p}.localhost" for _, p in owned]
                    await all_answer(sup.platform.ingress_port, hosts)
                    api_log = sup.layout.logs("api")  # svlogd's directory
                    if not (api_log / "current").exists():
                        raise BenchmarkFailed(f"no API log in {api_log}")
                    since = len(await asyncio.to_thread(_read, api_log))  # cycles from now on
                    waits = [await queue_wait_ms(s, p) for s, p in owned]
                    after = sample(sup.proc.pid, pids)
                    first = sessions[0]
                    api = await run_load(
                        sup.platform.api_url,
                        method="POST",
                        json={"query": DASHBOARD},
                        headers={"authorization": f"Bearer {first.token}"},
                        concurrency=opts.concurrency,
                        duration=opts.duration,
                        warmup=opts.warmup,
                        check=lambda r: None if "errors" not in r.json() else "GraphQL errors",
                    )
                    ingress = await ingress_load(sup.platform.ingress_port, hosts, opts)
                    cycles = await reconcile_cycles(api_log, apps, since)
                    if sup.states() != states:
                        raise BenchmarkFailed(f"a program restarted: {sup.states()} vs {states}")
                finally:
                    for s in sessions:
                        await s.cleanup()
    per_app = (rss_mb(after, PLATFORM) - rss_mb(idle, PLATFORM)) / apps
    return [
        _row(
            "API: dashboard query, 16 clients",
            api,
            API_TARGET_MS,
            [
                f"one Client's {apps // CLIENTS} projects, live + last 5 releases",
            ],
        ),
        _row(
            "ingress: GET / over every route",
            ingress,
            None,
            [
                f"{apps} routes, each request to the next host",
            ],
        ),
        Row(
            benchmark=NAME,
            subject="reconcile cycle (API + Pomegranate)",
            p50_ms=statistics.median(cycles),
            p99_ms=max(cycles),
            requests=len(cycles),
            notes=[
                f"{len(cycles)} periodic cycles over {apps} projects (p99 column: max)",
                _verdict(max(cycles), RECONCILE_TARGET_MS, "ms"),
            ],
        ),
        Row(
            benchmark=NAME,
            subject="build queue wait (QUEUED -> BUILDING)",
            p50_ms=statistics.median(waits),
            p99_ms=percentile(waits, 99),
            requests=len(waits),
            notes=[
                f"{apps} deploys, {DEPLOYS_IN_FLIGHT} in flight, in {deploys_took:.0f} s",
            ],
        ),
        Row(
            benchmark=NAME,
            subject="platform RSS per app",
            notes=[
                f"{per_app:.2f} MB/app: api+pomegranate+gitd+ingress {rss_mb(idle, PLATFORM):.0f} "
                f"MB idle, {rss_mb(after, PLATFORM):.0f} MB with {apps} apps",
                _verdict(per_app, RSS_TARGET_MB, "MB"),
                *(
                    f"{n} {after[n].rss / 1024:.0f} MB (+{(after[n].rss - idle[n].rss) / 1024:.1f})"
                    for n in PLATFORM
                ),
            ],
        ),
    ]


def _verdict(value: float, target: float, unit: str) -> str:
    return f"target < {target:g} {unit}: {'met' if value < target else 'missed'}"


def _row(subject: str, result: LoadResult, target: float | None, notes: list[str]) -> Row:
    if result.errors or not result.latencies_ms:
        raise BenchmarkFailed(f"{subject}: {result.error_note() or 'no successful request'}")
    extra = [_verdict(result.p99_ms or 0.0, target, "ms")] if target else []
    return Row(
        benchmark=NAME,
        subject=subject,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        requests=result.requests,
        notes=[*notes, *extra],
    )
