"""Push-to-live on Docker Swarm against one engine, in the same run (issue 16).

The 3-node cluster of scripts/cluster.sh is brought up for this benchmark and removed afterwards
(also on failure). Two platforms run one after the other, each the push-to-live benchmark's
(bench/push_to_live.py: Pomegranate, the API, the embedded ingress and gitd as subprocesses, a
signed-up Client with a fresh key, the `dockerfile` fixture as a git working copy): one with the
single-engine runtime (the baseline), one with PAASTECH_RUNTIME=swarm on the cluster (builds stay
on this host; the release rolls out as a Swarm service, 1 `web` replica, and the embedded ingress
in Swarm mode routes to its task on its node).

Row (repeated 3 times at the default --duration 10; --duration scales it, 1..10; p50 column: the
median, p99: the slowest run, ms): from the start of `git push paastech main` of a code change
(a comment appended to app.py: the build reuses the layers before the COPY) through gitd, the
API and Pomegranate to the first HTTP 200 of the new release through that platform's ingress,
polled every 10 ms; the answer must come from the new release. One untimed push first warms the
cache. Checks (fail loudly, no timing asserted): every push exits 0 with "Application deployed",
every answer is the new release. Everything is removed: projects, processes, the cluster.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from pathlib import Path

import httpx

from bench.deploy_latency import Samples, repetitions
from bench.push_to_live import PROJECT, changed_app, pushing_platform, timed
from bench.registry import Options, Row, register

NAME = "swarm: push-to-live (warm cache)"


async def measure(tmp: Path, reps: int, **settings: object) -> Samples:
    """``reps`` timed git pushes of a code change on a fresh platform with ``settings``."""
    from tests.support.platform import fixture

    samples = Samples()
    await asyncio.to_thread(tmp.mkdir)
    async with pushing_platform(tmp, **settings) as (s, git):
        project = await s.project()
        url = (await s.gql(PROJECT, p=project))["project"]["gitUrl"]
        app = fixture("dockerfile")
        work = await asyncio.to_thread(git.workdir, app, url)
        app_py = (app / "app.py").read_text()

        async def by_git() -> tuple[bool, list[str], str]:
            code, err = await git.push(work)
            ok = code == 0 and "=====> Application deployed" in err
            return ok, err.splitlines(), f"git push exited {code}: {err[-500:]}"

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{s.plat.ingress_port}",
            headers={"Host": f"{project}.localhost"},
            timeout=5,
        ) as ingress:
            await timed(ingress, 1, by_git, None, "warm-up git push")
            for number in range(2, reps + 2):
                await asyncio.to_thread(git.commit, work, "app.py", changed_app(app_py))
                await timed(ingress, number, by_git, samples, "git push")
    return samples


@register("swarm-push", "git push -> first 200 via the ingress: Swarm (3 nodes) vs one engine")
async def bench_swarm_push(opts: Options) -> list[Row]:
    from tests.support.cluster import swarm_cluster

    reps = repetitions(opts)
    with tempfile.TemporaryDirectory(prefix="bench-swarm-push-") as tmp, swarm_cluster() as c:
        one = await measure(Path(tmp) / "one", reps)
        many = await measure(
            Path(tmp) / "many",
            reps,
            runtime="swarm",
            swarm_docker_url=c.manager_url,
            swarm_registry_address=c.env["PAASTECH_SWARM_REGISTRY_ADDRESS"],
        )
    notes = ["dockerfile fixture, app.py changed each push; Host: <project>.localhost"]
    rows = [
        one.row(
            NAME,
            "one engine (DockerRuntime)",
            True,
            [f"git push returned at {statistics.median(one.extra_ms):,.0f} ms (median)", *notes],
        ),
        many.row(
            NAME,
            "swarm, 3 nodes (SwarmRuntime)",
            False,
            [f"git push returned at {statistics.median(many.extra_ms):,.0f} ms (median)", *notes],
        ),
    ]
    rows[1].notes.append(f"p50 ratio to one engine: {rows[1].p50_ms / rows[0].p50_ms:.2f}")
    return rows
