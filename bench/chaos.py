"""`make chaos` (`python -m bench.chaos --minutes N [--seed S]`): a long randomised fault run.

The platform runs as `make up` runs it (runit, tests/support/supervised.py) on a private
Docker engine (live-restore, as scripts/docker.sh starts one) so that the engine itself can be
restarted. Three static apps are deployed; a load generator requests each through the ingress
without pause, and a pusher deploys new releases one after another. Every few seconds a fault is
chosen at random: kill -9 of the API, Pomegranate, gitd or the ingress, or a dockerd restart.

The report: failed requests per app and per fault, the longest gap per app, releases per final
status, orphans, invariant violations (exit status 1 when there is any):
* after the run settles, each project has exactly one running release and none in progress;
* no container of a release other than the live one;
* zero failed requests through the ingress during a fault that does not kill the ingress or the
  engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from backend.rpc import platform_pb2 as ppb
from backend.rpc import platform_pb2_grpc as ppb_grpc
from backend.security import internal_secret
from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api
from tests.support.platform import TEST_SECRET, fixture, push, tar_dir
from tests.support.private_engine import PrivateEngine, private_engine
from tests.support.supervised import Load, Supervised, supervised

RESULTS = Path(__file__).resolve().parent / "results"
PROCESSES = ["api", "pomegranate", "gitd", "ingress"]
FAULTS = [*PROCESSES, "dockerd"]
SERVING_FAULTS = {"api", "pomegranate", "gitd"}  # the ingress must not notice these
FINAL = {"running", "superseded", "failed", "crashed", "stopped"}
APPS = """query($p: String!) { project(name: $p) {
  liveApplication { number } applications(first: 100) { number status } } }"""


@dataclass
class Fault:
    name: str
    started: float
    recovered: float | None = None  # the process answers again / the engine answers again


@dataclass
class Report:
    faults: list[Fault] = field(default_factory=list)
    pushes: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)


async def inject(sup: Supervised, engine: PrivateEngine, name: str) -> Fault:
    fault = Fault(name, time.monotonic())
    if name == "dockerd":
        await asyncio.to_thread(engine.stop)
        await asyncio.to_thread(engine.start)
    else:
        old = sup.kill9(name)
        await asyncio.to_thread(sup.wait_serving, name, old, 90)
    fault.recovered = time.monotonic()
    return fault


async def push_following(
    sup: Supervised, client_id: str, project: str, source: bytes
) -> tuple[bool, str]:
    """Deploy as gitd's hook does: when the API dies mid-release, follow the release (it
    resumes) to its outcome with Deployments.Follow. (ok, reason)."""
    metadata = (("x-paastech-secret", internal_secret(TEST_SECRET)),)
    number, lines = 0, 0

    async def chunks() -> AsyncIterator[ppb.DeployChunk]:
        header = ppb.DeployHeader(project=project, client_id=int(client_id), cause="chaos push")
        yield ppb.DeployChunk(header=header)
        yield ppb.DeployChunk(data=source)

    deadline = time.monotonic() + 300
    first = True
    while time.monotonic() < deadline:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{sup.platform.api_grpc_port}") as ch:
            stub = ppb_grpc.DeploymentsStub(ch)
            if first:
                call = stub.Deploy(chunks(), metadata=metadata)
            else:
                request = ppb.FollowRequest(
                    project=project,
                    client_id=int(client_id),
                    application=number,
                    skip_lines=lines,
                )
                call = stub.Follow(request, metadata=metadata)
            try:
                async for event in call:
                    kind = event.WhichOneof("event")
                    if kind == "status":
                        number = event.status.application or number
                    elif kind == "log":
                        lines += 1
                    elif kind == "finished":
                        return event.finished.ok, event.finished.reason
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or not number:
                    return False, f"stream lost before the release existed ({exc.code().name})"
        first = False
        await asyncio.sleep(1)
    return False, "no outcome within 300 s"


async def pusher(sup: Supervised, client_id: str, projects: list[str], report: Report) -> None:
    n = 0
    while True:
        n += 1
        project = random.choice(projects)
        source = tar_dir(fixture("static"), {"version.txt": f"{n}\n"})
        try:
            ok, reason = await push_following(sup, client_id, project, source)
            report.pushes["ok" if ok else f"rejected: {reason.splitlines()[0][:60]}"] += 1
        except Exception as exc:
            report.pushes[f"error {type(exc).__name__}"] += 1
            await asyncio.sleep(1)


async def _query(api: Api, project: str) -> dict:
    async with asyncio.timeout(120):
        while True:
            try:
                return (await api(APPS, p=project))["project"]
            except Exception:
                await asyncio.sleep(0.5)


async def settle(api: Api, projects: list[str]) -> dict[str, dict]:
    states: dict[str, dict] = {}
    deadline = time.monotonic() + 240
    for project in projects:
        while True:
            states[project] = await _query(api, project)
            done = all(a["status"].lower() in FINAL for a in states[project]["applications"])
            if done or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    return states


def _gap(results: list[tuple[float, bool]]) -> float:
    longest, start = 0.0, None
    for t, ok in results:
        if not ok and start is None:
            start = t
        elif ok and start is not None:
            longest, start = max(longest, t - start), None
    if start is not None and results:
        longest = max(longest, results[-1][0] - start)
    return longest


async def run(minutes: float, seed: int) -> tuple[dict, bool]:
    random.seed(seed)
    report = Report()
    data_dir = Path(tempfile.mkdtemp(prefix="paastech-chaos-"))
    with private_engine(live_restore=True) as engine:
        engine.load_images("paastech/busybox:latest")
        with supervised(data_dir, docker_url=engine.url, health_check_timeout_seconds=20) as sup:
            name = f"chaos{secrets.token_hex(3)}"
            data = await Api(sup.platform.api_url)(
                SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
            )
            api = Api(sup.platform.api_url, data["signup"]["token"])
            client_id = data["signup"]["client"]["id"]
            projects = [f"chaos-{i}-{secrets.token_hex(2)}" for i in range(3)]
            loads: dict[str, Load] = {}
            for project in projects:
                await api("mutation($n: String!) { createProject(name: $n) { name } }", n=project)
                outcome = await push(sup.platform, client_id, project, tar_dir(fixture("static")))
                if not outcome.ok:
                    raise RuntimeError(f"first deploy of {project} failed: {outcome.reason}")
                loads[project] = Load(sup.ports["ingress"], project)
                loads[project].start()
            await asyncio.sleep(2)
            push_task = asyncio.create_task(pusher(sup, client_id, projects, report))
            deadline = time.monotonic() + minutes * 60
            while time.monotonic() < deadline:
                await asyncio.sleep(random.uniform(3, 8))
                fault = await inject(sup, engine, random.choice(FAULTS))
                report.faults.append(fault)
                print(
                    f"  {fault.name}: back after {fault.recovered - fault.started:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
            push_task.cancel()
            await asyncio.gather(push_task, return_exceptions=True)
            states = await settle(api, projects)
            await asyncio.sleep(2)
            for load in loads.values():
                await load.stop()
            containers = engine.docker(
                "ps",
                "-a",
                "--format",
                '{{.Label "paastech.project"}} {{.Label "paastech.application"}} {{.State}}',
                capture_output=True,
                text=True,
            ).stdout.split("\n")
            images = engine.docker(
                "images", "--format", "{{.Repository}}:{{.Tag}}", capture_output=True, text=True
            ).stdout.split()
    await asyncio.to_thread(shutil.rmtree, data_dir, True)
    return _summarise(report, loads, states, containers, images), not report.violations


def _summarise(
    report: Report,
    loads: dict[str, Load],
    states: dict[str, dict],
    containers: list[str],
    images: list[str],
) -> dict:
    statuses: Counter = Counter()
    orphans: list[str] = []
    for project, state in states.items():
        apps = state["applications"]
        statuses.update(a["status"].lower() for a in apps)
        running = [a for a in apps if a["status"].lower() == "running"]
        if len(running) != 1:
            report.violations.append(f"{project}: {len(running)} running releases")
        stuck = [a for a in apps if a["status"].lower() not in FINAL]
        if stuck:
            report.violations.append(f"{project}: releases left in progress: {stuck}")
        live = str((state.get("liveApplication") or {}).get("number"))
        numbers = {str(a["number"]) for a in apps}
        for row in containers:
            parts = row.split()
            if len(parts) == 3 and parts[0] == project and parts[1] != live:
                orphans.append(f"container {project} v{parts[1]} ({parts[2]})")
        for image in images:
            ours = image.startswith(f"paastech/app-{project}:")
            if ours and image.rpartition(":")[2] not in numbers:
                orphans.append(f"image {image}")
    report.violations.extend(f"orphan {o}" for o in orphans)
    per_fault = []
    for i, fault in enumerate(report.faults):
        end = report.faults[i + 1].started if i + 1 < len(report.faults) else float("inf")
        failed = {
            p: sum(1 for t, ok in load.results if fault.started <= t < end and not ok)
            for p, load in loads.items()
        }
        per_fault.append(
            {
                "fault": fault.name,
                "recovery_s": round((fault.recovered or fault.started) - fault.started, 2),
                "failed_requests": failed,
            }
        )
        if fault.name in SERVING_FAULTS and any(failed.values()):
            report.violations.append(f"requests failed during a {fault.name} kill: {failed}")
    return {
        "faults": Counter(f.name for f in report.faults),
        "per_fault": per_fault,
        "requests": {p: len(load.results) for p, load in loads.items()},
        "failed_requests": {p: load.failures_since(0) for p, load in loads.items()},
        "longest_gap_s": {p: round(_gap(load.results), 2) for p, load in loads.items()},
        "pushes": dict(report.pushes),
        "releases_by_status": dict(statuses),
        "orphans": orphans,
        "violations": report.violations,
    }


def print_report(summary: dict) -> None:
    print("chaos run")
    print(f"  faults injected     {dict(summary['faults'])}")
    recovery: dict[str, list[float]] = {}
    for row in summary["per_fault"]:
        recovery.setdefault(row["fault"], []).append(row["recovery_s"])
    for name, values in sorted(recovery.items()):
        failed = sum(
            sum(r["failed_requests"].values()) for r in summary["per_fault"] if r["fault"] == name
        )
        print(
            f"  {name:<12} x{len(values):<3} recovery max {max(values):5.1f} s, "
            f"failed requests {failed}"
        )
    for project, total in summary["requests"].items():
        print(
            f"  app {project:<16} requests {total:>7}  failed "
            f"{summary['failed_requests'][project]:>5}  longest gap "
            f"{summary['longest_gap_s'][project]:.2f} s"
        )
    print(f"  pushes              {summary['pushes']}")
    print(f"  releases by status  {summary['releases_by_status']}")
    print(f"  orphans             {len(summary['orphans'])} {summary['orphans'][:5]}")
    print(f"  invariant violations {len(summary['violations'])}")
    for violation in summary["violations"]:
        print(f"    - {violation}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    print(f"chaos: {args.minutes} minutes, seed {seed}", file=sys.stderr, flush=True)
    summary, ok = asyncio.run(run(args.minutes, seed))
    summary["seed"] = seed
    summary["minutes"] = args.minutes
    print_report(summary)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chaos.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
