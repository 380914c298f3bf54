"""Add-on status history and logs (issue 15) against a real platform and real servers: the CLI's
`addons:logs` shows the server's own output, `addons:info` its transitions; a server stopped
behind the platform's back is recorded down, then available again once the API's reconcile has
brought it back, and the addonStatus subscription sees both live."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, new_cli
from tests.support.gqlclient import Api
from tests.support.platform import Platform, platform
from tests.support.polling import within

pytestmark = pytest.mark.docker

MB = 1024 * 1024
STATUS = "subscription($n: String!) { addonStatus(name: $n, last: 1) { name status message } }"


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    # A short reconcile period: the test waits for the API to notice a stopped server.
    with platform(tmp_path_factory.mktemp("addon-status"), reconcile_interval_seconds=2) as p:
        yield p


@pytest.fixture(scope="module")
def owner(plat: Platform, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str, str]:
    cli = new_cli(plat.api_url, tmp_path_factory.mktemp("addon-status-owner"))
    cli.signup()
    project = f"as-{secrets.token_hex(4)}"
    cli.ok("projects:create", project)
    redis = cli.ok("addons:create", "redis", "-p", project, "--json", timeout=300).json()
    token = cli.ok("tokens:create", f"t{secrets.token_hex(3)}", "--json").json()["token"]
    return cli, redis["name"], token


def container_of(addon: str) -> str:
    [container] = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=paastech.addon={addon}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return container


def test_logs_show_the_servers_own_output(owner: tuple[Cli, str, str]) -> None:
    cli, name, _token = owner
    out = cli.ok("addons:logs", name, "-n", "50").out
    assert "Ready to accept connections" in out
    assert len(cli.ok("addons:logs", name, "-n", "1").out.splitlines()) == 1


def test_info_shows_the_transitions_newest_first(owner: tuple[Cli, str, str]) -> None:
    cli, name, _token = owner
    info = cli.ok("addons:info", name, "--json").json()
    assert [h["status"] for h in info["statusHistory"]][:2] == ["creating", "available"]
    out = cli.ok("addons:info", name).out
    history = out[out.index("STATUS") :].splitlines()[1:]
    assert [line.split()[0] for line in history if line.strip()][-2:] == ["available", "creating"]


def test_a_stopped_server_is_recorded_down_and_back(
    plat: Platform, owner: tuple[Cli, str, str], tmp_path: Path
) -> None:
    cli, name, token = owner
    seen: list[dict[str, Any]] = []

    async def watch() -> None:
        async with Api(plat.api_url, token).subscribe(STATUS, n=name) as events:
            async for event in events:
                seen.append(event["addonStatus"])
                if len(seen) == 1:
                    # Subscribed (the history came first): now stop it behind the API's back.
                    subprocess.run(["docker", "stop", container_of(name)], check=True,
                                   capture_output=True)  # fmt: skip
                if [e["status"] for e in seen] == ["available", "down", "available"]:
                    return

    async def run() -> None:
        async with within(120, lambda: f"down and available again, seen {seen}"):
            await watch()

    asyncio.run(run())
    assert seen[1]["message"] == "server exited" and {e["name"] for e in seen} == {name}
    history = cli.ok("addons:info", name, "--json").json()["statusHistory"]
    assert [h["status"] for h in history][-3:] == ["available", "down", "available"]
    assert "Ready to accept connections" in cli.ok("addons:logs", name, "-n", "20").out


def test_the_data_volume_counts_in_volume_mb(owner: tuple[Cli, str, str]) -> None:
    cli, name, _token = owner
    # 3 MB into Redis: its append-only file on the data volume holds them.
    subprocess.run(
        ["docker", "exec", "-i", container_of(name), "redis-cli", "--no-auth-warning", "-x",
         "SET", "big"],
        input=b"x" * (3 * MB), capture_output=True, check=True,
    )  # fmt: skip
    size = cli.ok("addons:info", name, "--json").json()["dataSizeBytes"]
    assert size is not None and size >= 3 * MB
    assert "Data" in cli.ok("addons:info", name).out
    used = {q["name"]: q["used"] for q in cli.ok("quotas", "--json").json()}["volume_mb"]
    assert used == pytest.approx(size / MB, abs=0.01)  # its only volume
