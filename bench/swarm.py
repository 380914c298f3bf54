"""Docker Swarm against one engine (issue 16), in the same run, and the failover gap of a Swarm.

The 3-node cluster of scripts/cluster.sh is brought up for this benchmark and removed afterwards
(also on failure), with the platform registry of this process reachable from every node. Two
runtimes deploy the same `dockerfile` fixture app (tests/fixtures/apps/dockerfile, 2 `web`
replicas, health check /health) each behind its own embedded ingress (`python -m backend
ingress`, PAASTECH_RUNTIME docker or swarm), as `make up` runs them: DockerRuntime on this host's
engine (the baseline) and SwarmRuntime on the cluster (builds stay on this host in both).

Rows (repeated 3 times at the default --duration 10; --duration scales it, 1..10; the p50
column is the median, p99 the slowest run, ms):

- build-to-live: from the start of a build of the app (warm cache: one untimed build first)
  through release() (Pomegranate's release path: the runtime's rolling deploy on Swarm, start +
  health + switch on one engine) to the first HTTP 200 of that release through the ingress,
  polled every 10 ms. This is push-to-live without git, ssh and the API, which are the same
  for both runtimes (the push-to-live benchmark measures those on one engine).
- release switch: a new release of the already built image (another env): from the start of
  release() to the first 200 of the new release through the ingress.
- failover gap (Swarm only): requests one after another through the ingress while a worker
  node that runs a task is killed (`cluster.sh kill-node`: SIGKILL of its dockerd and
  containers); p50 column: the failed-request window (first to last failed request, 0 when
  none failed), p99 column: until the app runs its replicas on the surviving nodes again.

Checks (fail loudly, no timing asserted): every release succeeds and answers with its own
PAASTECH_RELEASE. Everything is removed: services, containers, networks, images, build cache,
the ingress processes, the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.deploy_latency import POLL, repetitions
from bench.registry import BenchmarkFailed, Options, Row, register

LIVE = "swarm: build-to-live (warm cache)"
SWITCH = "swarm: release switch"
FAILOVER = "swarm: failover gap"
ANSWER_TIMEOUT = 120.0  # seconds for a release to answer through the ingress
REPLICAS = 2
APP = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "apps" / "dockerfile"


@dataclass
class Side:
    """One runtime behind its own ingress."""

    name: str
    runtime: Any
    settings: Any
    ingress: str
    live_ms: list[float] = field(default_factory=list)
    switch_ms: list[float] = field(default_factory=list)


@contextlib.contextmanager
def ingress_process(env_extra: dict[str, str], data_dir: Path) -> Iterator[str]:
    """`python -m backend ingress` with these settings, until it answers; its URL."""
    from tests.support.servers import ROOT, free_port, stop_process

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAASTECH_")}
    env.update(
        PAASTECH_INGRESS_PORT=str(port),
        PAASTECH_HOST="127.0.0.1",
        PAASTECH_DATA_DIR=str(data_dir),
        **env_extra,
    )
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "ingress.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "ingress"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise BenchmarkFailed(f"ingress exited:\n{log_path.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, headers={"Host": "x.invalid"}).status_code == 404:
                        break
                if time.monotonic() > deadline:
                    raise BenchmarkFailed(f"ingress did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield url
        finally:
            stop_process(proc)


async def first_answer(ingress: str, host: str, release: int) -> None:
    """Poll the ingress until release ``release`` answers GET / with a 200."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_TIMEOUT
    last = ""
    async with httpx.AsyncClient(base_url=ingress, headers={"Host": host}, timeout=5) as client:
        while True:
            try:
                response = await client.get("/")
                if response.status_code == 200:
                    answered = response.json()["env"]["PAASTECH_RELEASE"]
                    if answered == str(release):
                        return
                    last = f"release {answered}"
                else:
                    last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if loop.time() > deadline:
                raise BenchmarkFailed(f"{host}: release {release} never answered ({last})")
            await asyncio.sleep(POLL)


def release_plan(project: str, image: str, number: int, host: str):
    from backend.pomegranate.release import Process, ReleasePlan

    return ReleasePlan(
        project=project,
        application=number,
        image=image,
        processes=[Process("web", None, REPLICAS)],
        env={"REPETITION": str(number)},
        port=5000,
        hostnames=[host],
        health_path="/health",
        health_timeout=30.0,
    )


async def measure(side: Side, project: str, source: bytes, reps: int) -> None:
    from backend.pomegranate.release import release

    async def ignore(line: str) -> None:
        pass

    host = f"{project}.localhost"
    runtime = side.runtime
    await runtime.build(project, 1, source, ignore)  # warm cache
    number = 0
    for _ in range(reps):
        number += 1
        started = time.perf_counter()
        built = await runtime.build(project, number, source, ignore)
        await release(
            runtime, release_plan(project, built.image, number, host), ignore, side.settings
        )
        await first_answer(side.ingress, host, number)
        side.live_ms.append((time.perf_counter() - started) * 1000)
        number += 1
        started = time.perf_counter()
        await release(
            runtime, release_plan(project, built.image, number, host), ignore, side.settings
        )
        await first_answer(side.ingress, host, number)
        side.switch_ms.append((time.perf_counter() - started) * 1000)


async def failover(side: Side, project: str, cluster) -> Row:
    """Kill a worker node that runs a task under sequential load; the failed-request window."""
    from tests.support.cluster import SCRIPT

    host = f"{project}.localhost"
    runtime = side.runtime
    running = [c for c in await runtime.list_containers(project) if c.running]
    victim = next(
        (
            a
            for a in cluster.node_addresses[1:]
            if any(c.labels["paastech.swarm.node"] == a for c in running)
        ),
        None,
    )
    if victim is None:
        raise BenchmarkFailed(f"no worker runs a task of {project}: {running}")
    node = cluster.node_addresses.index(victim) + 1
    failures: list[float] = []
    total = 0
    stop = asyncio.Event()

    async def load() -> None:
        nonlocal total
        async with httpx.AsyncClient(
            base_url=side.ingress, headers={"Host": host}, timeout=5
        ) as client:
            while not stop.is_set():
                total += 1
                try:
                    ok = (await client.get("/")).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if not ok:
                    failures.append(time.perf_counter())

    task = asyncio.create_task(load())
    try:
        await asyncio.sleep(1.0)  # load before the kill
        killed = time.perf_counter()
        await asyncio.to_thread(
            subprocess.run, [str(SCRIPT), "kill-node", str(node)], check=True, timeout=60
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while True:
            alive = [
                c
                for c in await runtime.list_containers(project)
                if c.running and c.labels["paastech.swarm.node"] != victim
            ]
            if len(alive) >= REPLICAS:
                break
            if loop.time() > deadline:
                raise BenchmarkFailed(f"{project}: replicas not rescheduled after 120 s")
            await asyncio.sleep(POLL)
        rescheduled_ms = (time.perf_counter() - killed) * 1000
        await asyncio.sleep(2.0)  # load after the replicas are back
    finally:
        stop.set()
        await task
        await asyncio.to_thread(
            subprocess.run,
            [str(SCRIPT), "up", "--registry-port", os.environ["PAASTECH_REGISTRY_PORT"]],
            check=True,
            timeout=180,
            capture_output=True,
        )
    gap_ms = (failures[-1] - failures[0]) * 1000 if failures else 0.0
    return Row(
        benchmark=FAILOVER,
        subject=f"worker node killed, {REPLICAS} replicas",
        p50_ms=gap_ms,
        p99_ms=rescheduled_ms,
        requests=total,
        errors=len(failures),
        notes=[
            f"{len(failures)} of {total} requests failed",
            "p50 column: failed-request window (first to last failed request), ms",
            "p99 column: until the replicas ran on the surviving nodes, ms",
        ],
    )


async def clean(side: Side, project: str) -> None:
    runtime = side.runtime
    with contextlib.suppress(Exception):
        for info in await runtime.list_containers(project):
            await runtime.remove(info.id)
    with contextlib.suppress(Exception):
        await runtime.remove_project_network(project)
    with contextlib.suppress(Exception):
        for tag in await runtime.list_images(project):
            await runtime.remove_image(tag, force=True)
    with contextlib.suppress(Exception):
        await runtime.remove_build_cache(project)
    with contextlib.suppress(Exception):
        await runtime.close()


def rows_of(sides: list[Side]) -> list[Row]:
    rows = []
    for benchmark, attr in ((LIVE, "live_ms"), (SWITCH, "switch_ms")):
        for side in sides:
            samples = getattr(side, attr)
            rows.append(
                Row(
                    benchmark=benchmark,
                    subject=side.name,
                    p50_ms=statistics.median(samples),
                    p99_ms=max(samples),
                    requests=len(samples),
                    baseline=side.name.startswith("one engine"),
                    notes=[f"median of {len(samples)}, ms (p99 column: max)"],
                )
            )
    for row in rows:
        base = next(r for r in rows if r.benchmark == row.benchmark and r.baseline)
        if row is not base and base.p50_ms:
            row.notes.append(f"p50 ratio to one engine: {row.p50_ms / base.p50_ms:.2f}")
    return rows


@register(
    "swarm",
    "Swarm vs one engine: build-to-live, release switch; the failover gap when a node dies",
)
async def bench_swarm(opts: Options) -> list[Row]:
    from backend.pomegranate.docker_runtime import DockerRuntime
    from backend.pomegranate.swarm_runtime import SwarmRuntime
    from backend.settings import Settings
    from tests.support.cluster import swarm_cluster
    from tests.support.platform import tar_dir

    source = tar_dir(APP)
    reps = repetitions(opts)
    token = secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="bench-swarm-") as tmp, swarm_cluster() as cluster:
        one = Settings(instance=f"bench-one-{token}")
        many = Settings(
            instance=f"bench-swarm-{token}",
            runtime="swarm",
            swarm_docker_url=cluster.manager_url,
            swarm_registry_address=cluster.env["PAASTECH_SWARM_REGISTRY_ADDRESS"],
        )
        (Path(tmp) / "one").mkdir()
        (Path(tmp) / "many").mkdir()
        with (
            ingress_process({"PAASTECH_INSTANCE": one.instance}, Path(tmp) / "one") as url_one,
            ingress_process(
                {
                    "PAASTECH_INSTANCE": many.instance,
                    "PAASTECH_RUNTIME": "swarm",
                    "PAASTECH_SWARM_DOCKER_URL": cluster.manager_url,
                },
                Path(tmp) / "many",
            ) as url_many,
        ):
            sides = [
                Side("one engine (DockerRuntime)", DockerRuntime(one), one, url_one),
                Side("swarm, 3 nodes (SwarmRuntime)", SwarmRuntime(many), many, url_many),
            ]
            projects = [f"bsw{token}a", f"bsw{token}b"]
            try:
                for side, project in zip(sides, projects, strict=True):
                    await measure(side, project, source, reps)
                rows = rows_of(sides)
                rows.append(await failover(sides[1], projects[1], cluster))
            finally:
                for side, project in zip(sides, projects, strict=True):
                    await clean(side, project)
    return rows
