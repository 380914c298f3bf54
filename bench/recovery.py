"""Recovery after a crash (issue 20): the platform as `make up` runs it (runit) on a private
Docker engine; one app under continuous load through the ingress. For each fault (kill -9 of
each process, a dockerd restart with and without live-restore): how long until the process (or
engine) serves again, and the failed-request gap the app's clients saw through the ingress."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from bench.chaos import PROCESSES, inject
from bench.registry import Options, Row, register
from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api
from tests.support.platform import fixture, push, tar_dir
from tests.support.private_engine import PrivateEngine, private_engine
from tests.support.supervised import Load, Supervised, supervised

NAME = "recovery"


async def _deploy(sup: Supervised) -> str:
    name = f"b{secrets.token_hex(4)}"
    data = await Api(sup.platform.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    api = Api(sup.platform.api_url, data["signup"]["token"])
    project = f"rec-{secrets.token_hex(3)}"
    await api("mutation($n: String!) { createProject(name: $n) { name } }", n=project)
    outcome = await push(
        sup.platform, data["signup"]["client"]["id"], project, tar_dir(fixture("static"))
    )
    if not outcome.ok:
        raise RuntimeError(f"deploy failed: {outcome.reason}")
    return project


async def _measure(sup: Supervised, engine: PrivateEngine, load: Load, fault: str) -> Row:
    await asyncio.sleep(1)  # steady load before the fault
    mark = len(load.results)
    done = await inject(sup, engine, fault)
    # Serving again: a success after the last failure, for 2 s in a row.
    async with asyncio.timeout(120):
        while True:
            window = load.results[mark:]
            last_fail = max((t for t, ok in window if not ok), default=None)
            if window and (last_fail is None or window[-1][0] - last_fail > 2):
                break
            await asyncio.sleep(0.1)
    window = load.results[mark:]
    failed = sum(1 for _, ok in window if not ok)
    back = done.recovered - done.started if done.recovered else None
    subject = f"kill -9 {fault}" if fault in PROCESSES else fault
    return Row(
        benchmark=NAME,
        subject=subject,
        p50_ms=None if back is None else back * 1000,
        requests=len(window),
        errors=failed,
        notes=[
            f"back in {back:.2f} s" if back is not None else "not back",
            f"app gap {load.gap_since(mark):.2f} s",
            f"failed requests {failed}/{len(window)}",
        ],
    )


async def _run_on(live_restore: bool, faults: list[str], label: str) -> list[Row]:
    rows: list[Row] = []
    data_dir = Path(tempfile.mkdtemp(prefix="paastech-recovery-"))
    try:
        with private_engine(live_restore=live_restore) as engine:
            engine.load_images("paastech/busybox:latest")
            with supervised(
                data_dir, docker_url=engine.url, health_check_timeout_seconds=20
            ) as sup:
                project = await _deploy(sup)
                load = Load(sup.ports["ingress"], project)
                load.start()
                try:
                    async with asyncio.timeout(30):
                        while not any(ok for _, ok in load.results):  # noqa: ASYNC110
                            await asyncio.sleep(0.1)
                    for fault in faults:
                        row = await _measure(sup, engine, load, fault)
                        if fault == "dockerd":
                            row.subject = f"dockerd restart ({label})"
                        rows.append(row)
                finally:
                    await load.stop()
    finally:
        await asyncio.to_thread(shutil.rmtree, data_dir, True)
    return rows


@register(NAME, "kill -9 of each process and dockerd restarts under make up: recovery, gap")
async def recovery(opts: Options) -> list[Row]:
    started = time.monotonic()
    rows = await _run_on(True, [*PROCESSES, "dockerd"], "live-restore")
    rows += await _run_on(False, ["dockerd"], "no live-restore")
    for row in rows:
        row.notes.append("p50 ms column: time until it serves again")
    rows[0].notes.append(f"whole benchmark {time.monotonic() - started:.0f} s")
    return rows
