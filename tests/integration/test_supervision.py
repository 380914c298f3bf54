"""`make up` under runit: kill -9 of any platform process, it comes back on its own, the
others keep running, and the app keeps answering through the ingress (for the ingress itself:
from the moment it is back). Ctrl-C still stops everything."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api
from tests.support.platform import fixture, push, tar_dir
from tests.support.supervised import Load, Supervised, supervised

pytestmark = pytest.mark.docker


async def _deploy_static(sup: Supervised) -> tuple[str, str]:
    name = f"u{secrets.token_hex(4)}"
    data = await Api(sup.platform.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    api = Api(sup.platform.api_url, data["signup"]["token"])
    project = f"s-{secrets.token_hex(4)}"
    await api("mutation($n: String!) { createProject(name: $n) { name } }", n=project)
    client_id = data["signup"]["client"]["id"]
    outcome = await push(sup.platform, client_id, project, tar_dir(fixture("static")))
    assert outcome.ok, outcome.reason
    return project, client_id


async def test_kill9_of_each_process_is_restarted_and_the_app_keeps_serving(
    tmp_path: Path,
) -> None:
    with supervised(tmp_path, health_check_timeout_seconds=20) as sup:
        project, client_id = await _deploy_static(sup)
        load = Load(sup.ports["ingress"], project)
        load.start()
        try:
            async with asyncio.timeout(20):
                while not any(ok for _, ok in load.results):
                    await asyncio.sleep(0.1)
            for name in ("api", "pomegranate", "gitd", "ingress", "registry"):
                before = {n: sup.pid(n) for n in sup.names}
                mark = len(load.results)
                old = sup.kill9(name)
                new = await asyncio.to_thread(sup.wait_serving, name, old, 60)
                after = {n: sup.pid(n) for n in sup.names}
                assert new != old
                # The others were not touched.
                assert {n: p for n, p in after.items() if n != name} == {
                    n: p for n, p in before.items() if n != name
                }
                if name == "ingress":
                    # Its own kill: requests fail until it is back, then it serves again.
                    async with asyncio.timeout(30):
                        while not load.results[-1][1]:
                            await asyncio.sleep(0.1)
                    print(f"ingress kill -9: gap {load.gap_since(mark):.2f} s")
                else:
                    # A few more requests after it is back.
                    back = len(load.results)
                    async with asyncio.timeout(30):
                        while len(load.results) < back + 5:
                            await asyncio.sleep(0.05)
                    assert load.failures_since(mark) == [], f"{name}: requests failed"
        finally:
            await load.stop()
        assert len(load.results) > 50
        # The platform works after all of it: a new release goes live.
        outcome = await push(sup.platform, client_id, project, tar_dir(fixture("static")))
        assert outcome.ok, outcome.reason
        terminal = sup.output.read_text()
        for name in ("api", "pomegranate", "gitd", "ingress", "registry"):
            # "exited unexpectedly", or "crashed while starting" if it was up less than
            # START_SECONDS (then restarted after a second): either way, said and restarted.
            said = [
                line for line in terminal.splitlines() if f" {name:<11} | [supervisor] " in line
            ]
            assert any("(killed by signal 9" in line for line in said), said
            assert f" {name:<11} | " in terminal  # its own lines, with its name
        # Ctrl-C stops every process and the supervisor itself.
        pids = [sup.pid(n) for n in sup.names]
        before = len(sup.output.read_text())
        sup.proc.send_signal(signal.SIGINT)
        await asyncio.to_thread(sup.proc.wait, 60)
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        # A stop is not reported as a crash.
        assert "[supervisor]" not in sup.output.read_text()[before:]


async def test_crash_loop_is_reported_and_the_others_keep_running(tmp_path: Path) -> None:
    procfile = "steady: sleep 1000\nbroken: echo cannot start; exit 3\n"
    with supervised(tmp_path, procfile=procfile) as sup:
        steady = await asyncio.to_thread(sup.wait_state, "steady")
        async with asyncio.timeout(90):
            while sup.states().get("broken", ("?", 0))[0] != "DOWN":
                await asyncio.sleep(0.5)
        terminal = sup.output.read_text()
        assert "broken | cannot start" in terminal
        assert "broken crashed 5 times in a row" in terminal
        assert sup.states()["steady"] == ("RUNNING", steady)
        # The command the message gives starts it again (and it crashes again: still broken).
        assert f"Fix it, then: sv start {sup.services / 'broken'}" in terminal
        sup.sv("start", str(sup.services / "broken"))
        async with asyncio.timeout(90):
            while sup.output.read_text().count("broken | cannot start") < 6:
                await asyncio.sleep(0.2)
        assert sup.states()["steady"] == ("RUNNING", steady)
