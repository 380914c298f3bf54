"""Deploy latency of the real platform against the same work done with the docker CLI.

Each entry starts its own platform (tests/support/platform.py: Pomegranate + the API as
subprocesses, fresh data dir, SQLite), signs a Client up, and deploys the `dockerfile` fixture
app (tests/fixtures/apps/dockerfile). Every measurement is repeated (3 times at the default
--duration 10; --duration scales it, 1..10) with the platform and the docker CLI alternating;
the p50 column is the median, the p99 column the slowest run, requests/s is empty. The ratio
is platform / docker CLI (the docker CLI row is the baseline).

- deploy-latency (uncached): from the start of push() (handing the tar to the API's internal
  Deployments gRPC, as gitd does) to the first HTTP 200 from the new release's container on
  its published 127.0.0.1 port, found by polling the project's `processes` through GraphQL.
  The Dockerfile gets `ENV CACHEBUST=<random>` right after FROM, so no layer after the base
  image is cached. Baseline: `DOCKER_BUILDKIT=0 docker build -t TAG DIR` on a directory with
  the same files (its own random CACHEBUST) + `docker run -d -p 127.0.0.1::5000 -e PORT=5000
  TAG` + `docker port` + polling GET / until a real HTTP 200 (docker-proxy accepts connections
  before the app listens).
- deploy-latency (cached): the same, pushing the tar of the project's previous push again
  (every build step a cache hit) against a cached `docker build` + run + first 200. The
  platform sees that nothing its build reads changed and reuses the image without running
  buildah (backend/pomegranate/build_reuse.py); its notes say "image reused".
- release switch (deploy): from the start of a `setEnvVars` mutation on a running project
  until its new release is RUNNING (liveApplication, polled) and GET / through the embedded
  ingress (`Host: <project>.localhost`) answers with the new value. Baseline: `docker run` of
  the already built image with the new env + first 200: the container start a config change
  needs, without build. (The cached deploy row of the same run shows the platform's full
  redeploy for comparison.)

The platform also does work the baseline does not: a LABEL step in its build, resource limits
(256 MB; 0.5 CPU once healthy, 1.0 while it starts), its own network per project, a health
check before the switch, stopping the previous release, persisting and publishing statuses.
Checks (fail loudly, no timing is asserted): every push succeeds, the
"Using cache" counts show the build was (un)cached as intended, the answering container is the
new release. Everything created is removed: projects (deleteProject, then by label), the
docker CLI containers and images.

Each entry's platform is its own installation (paastech.instance label), so other platforms on
the same Docker engine neither see nor touch its containers; periodic reconcile is off so it
cannot land inside a measurement.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.registry import BenchmarkFailed, Options, Row, register

UNCACHED = "deploy-latency (uncached)"
CACHED = "deploy-latency (cached)"
SWITCH = "release switch (deploy)"
PASSWORD = "Vr7!qL2#mZ9x-tortoise-lantern"
# Seconds between polls (GraphQL state, HTTP GET), the same for platform and baseline: at 50 ms
# the polling alone added about 25 ms to each median.
POLL = 0.01
DEPLOY_TIMEOUT = 300.0  # one push/build/switch, seconds
APP_PORT = 5000
# The platform's line for a push whose tree, Dockerfile and base images are all unchanged
# (backend/pomegranate/build_reuse.py): no build step runs at all.
REUSED = "reusing its image"
BENCH_REPO = "paastech-bench/deploy"

SIGNUP = """mutation($email: String!, $username: String!, $password: String!) {
  signup(email: $email, username: $username, password: $password) { token client { id } }
}"""
STATE = """query($p: String!) { project(name: $p) {
  liveApplication { number status }
  processes { processType replica application running hostPort } } }"""
LIVE = """query($p: String!) { project(name: $p) { liveApplication { number status } } }"""
SET_ENV = """mutation($p: String!, $k: String!, $v: String!) {
  setEnvVars(project: $p, vars: [{key: $k, value: $v}]) { project { name } } }"""

# A JSON body of the fixture app: None when it is the wanted one, else why not.
BodyCheck = Callable[[dict[str, Any]], str | None]


# --- measurement plumbing -----------------------------------------------------------------


@dataclass
class Samples:
    ms: list[float] = field(default_factory=list)
    extra_ms: list[float] = field(default_factory=list)  # e.g. when push() returned
    cache_hits: list[str] = field(default_factory=list)  # "k/n" build steps from cache

    def row(self, benchmark: str, subject: str, baseline: bool, notes: list[str]) -> Row:
        p50 = statistics.median(self.ms)
        return Row(
            benchmark=benchmark,
            subject=subject,
            rps=None,
            p50_ms=p50,
            p99_ms=max(self.ms),
            requests=len(self.ms),
            baseline=baseline,
            notes=[f"median of {len(self.ms)}, ms (p99 column: max)", *notes],
        )


def repetitions(opts: Options) -> int:
    return max(1, min(10, round(3 * opts.duration / 10)))


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _ratio_note(rows: list[Row]) -> None:
    """The table's ratio column shows only rps ratios: put the p50 ratio in the notes."""
    base = next(r for r in rows if r.baseline)
    for row in rows:
        if row is not base and row.p50_ms is not None and base.p50_ms:
            row.notes.insert(0, f"p50 x{row.p50_ms / base.p50_ms:.2f} vs docker CLI")


async def first_200(
    port: int, check: BodyCheck, within: float = 60, host: str | None = None
) -> None:
    """Poll GET 127.0.0.1:<port>/ until a real HTTP 200 whose JSON body passes `check`; with
    `host`, as that Host (a route of the embedded ingress)."""
    deadline = time.monotonic() + within
    last = "no answer"
    headers = {"Host": host} if host else None
    async with httpx.AsyncClient(timeout=2, headers=headers) as http:
        while time.monotonic() < deadline:
            try:
                response = await http.get(f"http://127.0.0.1:{port}/")
                if response.status_code == 200:
                    problem = check(response.json())
                    if problem is None:
                        return
                    last = problem
                else:
                    last = f"HTTP {response.status_code}"
            except (httpx.HTTPError, ValueError) as exc:
                last = type(exc).__name__
            await asyncio.sleep(POLL)
    raise BenchmarkFailed(f"127.0.0.1:{port} gave no good 200 within {within:g} s: {last}")


def _check(**wanted: str) -> BodyCheck:
    def check(body: dict[str, Any]) -> str | None:
        got = {"app": body.get("app"), "version": body.get("version"), **body.get("env", {})}
        wrong = {k: got.get(k) for k, v in wanted.items() if got.get(k) != v}
        return f"answered {wrong}, wanted {wanted}" if wrong else None

    return check


# The classic builder's "Step 2/6 : COPY" and buildah's "STEP 2/6: COPY" ("[1/2] STEP ..." in
# multi-stage builds): the raw `docker build` baseline and the isolated builder (issue 10).
_STEP = re.compile(r"^(?:\[\d+/\d+\] )?Step \d+/\d+ ?: (\w+)", re.IGNORECASE)


def cache_hits(lines: list[str]) -> str:
    """'k/n': of the n steps after FROM in a classic-builder log (the LABEL steps the engine
    appends for build labels left out), k came from the cache."""
    if any(REUSED in line for line in lines):
        return "image reused"  # the platform saw nothing a build reads had changed
    steps: list[str] = []
    hits = 0
    for line in lines:
        if match := _STEP.match(line.strip()):
            steps.append(match.group(1).upper())
        elif "using cache" in line.lower() and steps and steps[-1] not in ("FROM", "LABEL"):
            hits += 1
    return f"{hits}/{sum(1 for step in steps if step not in ('FROM', 'LABEL'))}"


def dockerfile_with_cachebust(value: str) -> str:
    """The fixture's Dockerfile with `ENV CACHEBUST=<value>` right after FROM."""
    from tests.support.platform import fixture

    lines = (fixture("dockerfile") / "Dockerfile").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.upper().startswith("FROM ")) + 1
    return "\n".join([*lines[:at], f"ENV CACHEBUST={value}", *lines[at:]]) + "\n"


# --- the docker CLI baseline ------------------------------------------------------------


async def _docker(*args: str, buildkit_off: bool = False) -> str:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"} if buildkit_off else None
    proc = await asyncio.create_subprocess_exec(
        "docker",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), DEPLOY_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchmarkFailed(f"docker {args[0]} timed out after {DEPLOY_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        tail = (err or out).decode(errors="replace").strip()[-500:]
        raise BenchmarkFailed(f"docker {' '.join(args[:3])} exited {proc.returncode}: {tail}")
    return out.decode(errors="replace")


@dataclass
class DockerCli:
    """The same work with the docker CLI; remembers what it created, removes it on close."""

    work: Path
    run_id: str
    tags: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)

    def context(self, name: str, changes: dict[str, str]) -> Path:
        """A directory with the fixture's files and `changes` (what tar_dir pushes)."""
        from tests.support.platform import fixture

        path = self.work / name
        shutil.copytree(fixture("dockerfile"), path)
        for file, text in changes.items():
            (path / file).write_text(text)
        return path

    def tag(self, label: str) -> str:
        tag = f"{BENCH_REPO}-{self.run_id}:{label}"
        self.tags.append(tag)
        return tag

    async def build(self, context: Path, tag: str) -> str:
        """`DOCKER_BUILDKIT=0 docker build -t TAG DIR`; the cache hits of the log."""
        out = await _docker("build", "-t", tag, str(context), buildkit_off=True)
        return cache_hits(out.splitlines())

    async def run(self, tag: str, check: BodyCheck, env: dict[str, str] | None = None) -> str:
        """`docker run -d -p 127.0.0.1::5000 -e PORT=5000 [-e K=V] TAG`, then first 200."""
        flags = [arg for k, v in (env or {}).items() for arg in ("-e", f"{k}={v}")]
        run_args = ["run", "-d", "-p", f"127.0.0.1::{APP_PORT}", "-e", f"PORT={APP_PORT}"]
        container = (await _docker(*run_args, *flags, tag)).strip()
        self.containers.append(container)
        port = (await _docker("port", container, f"{APP_PORT}/tcp")).split()[0]
        await first_200(int(port.rpartition(":")[2]), check)
        return container

    async def deploy(self, context: Path, tag: str, out: Samples) -> None:
        started = time.perf_counter()
        hits = await self.build(context, tag)
        container = await self.run(tag, _check(app="dockerfile"))
        out.ms.append(_elapsed_ms(started))
        out.cache_hits.append(hits)
        await self.remove_containers(keep=container)

    async def remove_containers(self, keep: str | None = None) -> None:
        gone = [c for c in self.containers if c != keep]
        if gone:
            await _docker("rm", "-f", *gone)
        self.containers = [keep] if keep else []

    async def close(self) -> None:
        with suppress(BenchmarkFailed):
            await self.remove_containers()
        if self.tags:
            with suppress(BenchmarkFailed):
                await _docker("rmi", "-f", *self.tags)


# --- the platform -------------------------------------------------------------------------


@dataclass
class Session:
    plat: Any  # tests.support.platform.Platform
    http: httpx.AsyncClient
    token: str = ""
    client_id: int = 0
    projects: list[str] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)  # last release number per project

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            self.plat.api_url, json={"query": query, "variables": variables}, headers=headers
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            name = query.split("{")[1].split("(")[0].strip()
            raise BenchmarkFailed(f"GraphQL {name}: {response.status_code} {str(body)[:300]}")
        return body["data"]

    async def signup(self) -> None:
        name = f"bench{secrets.token_hex(4)}"
        data = await self.gql(SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD)
        self.token = data["signup"]["token"]
        self.client_id = int(data["signup"]["client"]["id"])

    async def project(self) -> str:
        name = f"bench-{secrets.token_hex(4)}"
        self.projects.append(name)
        await self.gql("mutation($n: String!) { createProject(name: $n) { name } }", n=name)
        self.numbers[name] = 0
        return name

    async def web_port(self, project: str, number: int, *, live: bool) -> int | None:
        """The published port of web.1 of release `number` while running; with `live`, only
        once that release is the project's RUNNING live application."""
        state = (await self.gql(STATE, p=project))["project"]
        if live:
            app = state["liveApplication"]
            if not app or app["number"] != number or app["status"] != "RUNNING":
                return None
        for p in state["processes"]:
            which = (p["processType"], p["replica"], p["application"])
            if which == ("web", 1, number) and p["running"] and p["hostPort"]:
                return p["hostPort"]
        return None

    async def answers(self, project: str, number: int, check: BodyCheck, *, live: bool) -> None:
        """Poll until release `number` answers 200 on its own published port."""
        while True:
            port = await self.web_port(project, number, live=live)
            if port is not None:
                break
            await asyncio.sleep(POLL)
        await first_200(port, check)

    async def push(self, project: str, source: bytes, out: Samples | None = None) -> None:
        """push() the tar; with `out`, time it to the new release's first 200."""
        from tests.support.platform import push

        number = self.numbers[project] + 1
        check = _check(app="dockerfile", PAASTECH_RELEASE=str(number))

        async def answered_at() -> float:
            await self.answers(project, number, check, live=False)
            return time.perf_counter()

        started = time.perf_counter()
        deploy = asyncio.create_task(push(self.plat, self.client_id, project, source))
        watch = asyncio.create_task(answered_at())
        try:
            async with asyncio.timeout(DEPLOY_TIMEOUT):
                outcome = await deploy
                pushed_ms = _elapsed_ms(started)
                if not outcome.ok:
                    raise BenchmarkFailed(f"push to {project} failed: {outcome.reason}")
                if outcome.number != number:
                    raise BenchmarkFailed(f"push made release {outcome.number}, not {number}")
                self.numbers[project] = number
                answered = await watch
        except TimeoutError:
            raise BenchmarkFailed(f"push to {project} took over {DEPLOY_TIMEOUT:g} s") from None
        finally:
            for task in (deploy, watch):
                task.cancel()
            await asyncio.gather(deploy, watch, return_exceptions=True)
        if out is not None:
            out.ms.append((answered - started) * 1000)
            out.extra_ms.append(pushed_ms)
            out.cache_hits.append(cache_hits(outcome.lines))

    async def switch(self, project: str, value: str, out: Samples) -> None:
        """setEnvVars VERSION=value; time until the new release is RUNNING and answers through
        the ingress, as the app's users reach it. (Not on the port listed by `processes`: that
        field answers only once the old release's drain is over, which comes after live.)"""
        number = self.numbers[project] + 1
        started = time.perf_counter()
        try:
            async with asyncio.timeout(DEPLOY_TIMEOUT):
                await self.gql(SET_ENV, p=project, k="VERSION", v=value)
                while True:
                    live = (await self.gql(LIVE, p=project))["project"]["liveApplication"]
                    if live and live["number"] == number and live["status"] == "RUNNING":
                        break
                    await asyncio.sleep(POLL)
                await first_200(
                    self.plat.ingress_port, _check(version=value), host=f"{project}.localhost"
                )
        except TimeoutError:
            raise BenchmarkFailed(f"release {number} of {project} not live in time") from None
        out.ms.append(_elapsed_ms(started))
        self.numbers[project] = number

    async def cleanup(self) -> None:
        from tests.support.platform import cleanup_project

        for name in self.projects:
            with suppress(Exception):
                await self.gql("mutation($n: String!) { deleteProject(name: $n) { name } }", n=name)
            for step in (cleanup_project, _remove_labelled_images):
                try:
                    await asyncio.to_thread(step, name)
                except Exception as exc:  # keep the benchmark's own error; say what is left
                    print(f"  cleanup of {name} incomplete: {exc}", file=sys.stderr, flush=True)


def _remove_labelled_images(project: str) -> None:
    """Untagged images the platform built for the project (cleanup_project goes by tag)."""
    ids = subprocess.run(
        ["docker", "images", "-aq", "--filter", f"label=paastech.project={project}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


@asynccontextmanager
async def session() -> AsyncIterator[tuple[Session, DockerCli]]:
    """A running platform with a signed-up Client, and a docker CLI helper; all removed after."""
    from tests.support.platform import platform

    run_id = secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="paastech-bench-deploy-") as tmp:
        data_dir = Path(tmp) / "platform"
        data_dir.mkdir()
        work = Path(tmp) / "docker"
        work.mkdir()
        cli = DockerCli(work, run_id)
        try:
            with platform(
                data_dir, health_check_timeout_seconds=60, reconcile_interval_seconds=86_400
            ) as plat:
                async with httpx.AsyncClient(timeout=60) as http:
                    s = Session(plat, http)
                    try:
                        await s.signup()
                        yield s, cli
                    finally:
                        await s.cleanup()
        finally:
            await cli.close()


# --- the benchmarks -----------------------------------------------------------------------


def _hits_note(hits: list[str]) -> str:
    return ", ".join(h if h == "image reused" else f"{h} steps" for h in hits)


def _deploy_rows(benchmark: str, platform_s: Samples, docker_s: Samples, what: str) -> list[Row]:
    rows = [
        docker_s.row(
            benchmark,
            "docker CLI: build + run + first 200",
            True,
            [f"{what}; cache hits {_hits_note(docker_s.cache_hits)}"],
        ),
        platform_s.row(
            benchmark,
            "PaaSTech: push() -> first 200 of new release",
            False,
            [
                f"push() returned at {statistics.median(platform_s.extra_ms):,.0f} ms (median)",
                f"cache hits {_hits_note(platform_s.cache_hits)}",
            ],
        ),
    ]
    _ratio_note(rows)
    return rows


@register(UNCACHED, "push with a never-seen Dockerfile -> first 200, vs docker build+run")
async def uncached(opts: Options) -> list[Row]:
    from tests.support.platform import fixture, tar_dir

    reps = repetitions(opts)
    platform_s, docker_s = Samples(), Samples()
    async with session() as (s, cli):
        project = await s.project()
        # Warm-up (not timed): the project's first release, so each timed push replaces one.
        await s.push(project, tar_dir(fixture("dockerfile")))
        for i in range(reps):

            async def on_platform() -> None:
                changes = {"Dockerfile": dockerfile_with_cachebust(secrets.token_hex(8))}
                await s.push(project, tar_dir(fixture("dockerfile"), changes), platform_s)

            async def on_docker(i: int = i) -> None:
                changes = {"Dockerfile": dockerfile_with_cachebust(secrets.token_hex(8))}
                context = cli.context(f"uncached-{i}", changes)
                await cli.deploy(context, cli.tag(f"u{i}"), docker_s)

            for step in (on_platform, on_docker) if i % 2 == 0 else (on_docker, on_platform):
                await step()
    _expect_hits(platform_s, docker_s, cached=False)
    return _deploy_rows(UNCACHED, platform_s, docker_s, "ENV CACHEBUST=<random> after FROM")


@register(CACHED, "push of unchanged source (layer cache hit) -> first 200, vs docker CLI")
async def cached(opts: Options) -> list[Row]:
    from tests.support.platform import fixture, tar_dir

    reps = repetitions(opts)
    platform_s, docker_s = Samples(), Samples()
    async with session() as (s, cli):
        project = await s.project()
        source = tar_dir(
            fixture("dockerfile"), {"Dockerfile": dockerfile_with_cachebust(secrets.token_hex(8))}
        )
        context = cli.context(
            "cached", {"Dockerfile": dockerfile_with_cachebust(secrets.token_hex(8))}
        )
        # Warm-up (not timed): fill both layer caches.
        await s.push(project, source)
        await cli.build(context, cli.tag("warm"))
        for i in range(reps):

            async def on_platform() -> None:
                await s.push(project, source, platform_s)

            async def on_docker(i: int = i) -> None:
                await cli.deploy(context, cli.tag(f"c{i}"), docker_s)

            for step in (on_platform, on_docker) if i % 2 == 0 else (on_docker, on_platform):
                await step()
    _expect_hits(platform_s, docker_s, cached=True)
    return _deploy_rows(CACHED, platform_s, docker_s, "same directory as the warm-up build")


@register(SWITCH, "setEnvVars on a running project -> new release RUNNING and answering")
async def release_switch(opts: Options) -> list[Row]:
    from tests.support.platform import fixture, tar_dir

    reps = repetitions(opts)
    platform_s, docker_s = Samples(), Samples()
    async with session() as (s, cli):
        project = await s.project()
        await s.push(project, tar_dir(fixture("dockerfile")))  # not timed
        tag = cli.tag("switch")
        await cli.build(cli.context("switch", {}), tag)  # not timed
        for i in range(reps):
            value = f"v-{i}-{secrets.token_hex(3)}"

            async def on_platform(value: str = value) -> None:
                await s.switch(project, value, platform_s)

            async def on_docker(value: str = value) -> None:
                started = time.perf_counter()
                container = await cli.run(tag, _check(version=value), {"VERSION": value})
                docker_s.ms.append(_elapsed_ms(started))
                await cli.remove_containers(keep=container)

            for step in (on_platform, on_docker) if i % 2 == 0 else (on_docker, on_platform):
                await step()
    rows = [
        docker_s.row(
            SWITCH,
            "docker CLI: run (new env) + first 200",
            True,
            ["same image, no build: the container start a config change needs"],
        ),
        platform_s.row(
            SWITCH,
            "PaaSTech: setEnvVars -> RUNNING + 200",
            False,
            [
                f"liveApplication polled every {POLL * 1000:.0f} ms, then GET / via the ingress",
                "compare the cached deploy rows",
            ],
        ),
    ]
    _ratio_note(rows)
    return rows


def _expect_hits(platform_s: Samples, docker_s: Samples, *, cached: bool) -> None:
    """The builds were (un)cached as intended: every step after FROM hit (or missed) the cache.
    (The LABEL steps the engine appends for the platform's build labels are left out: the
    release number label never hits.)"""
    for who, samples in (("platform", platform_s), ("docker CLI", docker_s)):
        for hits in samples.cache_hits:
            if hits == "image reused":
                if not cached:
                    raise BenchmarkFailed(f"{who}: an uncached build reused an image")
                continue
            got, steps = (int(x) for x in hits.split("/"))
            if not steps or got != (steps if cached else 0):
                state = "cached" if cached else "uncached"
                raise BenchmarkFailed(f"{who}: {hits} build steps from the cache ({state}?)")
