"""`paastech metrics` (issue 18) against a real API (SQLite, no Pomegranate): points written in
its database, shown as sparklines and as JSON; bad ranges and other Clients' projects refused."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.metrics import histogram
from cli.commands.metrics import SPARKS, sparkline
from tests.cli.conftest import Cli, new_cli
from tests.support.databases import RawDb
from tests.support.servers import api_server

MB = 2**20


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RawDb]]:
    data_dir = tmp_path_factory.mktemp("cli-metrics-api")
    with api_server(data_dir, login_max_failures_per_address=100_000) as url:
        yield url, RawDb(data_dir, "")


@pytest.fixture
def user(api: tuple[str, RawDb], tmp_path: Path) -> Cli:
    cli = new_cli(api[0], tmp_path)
    cli.signup()
    return cli


async def _with_points(user: Cli, db: RawDb) -> str:
    project = f"t-{secrets.token_hex(4)}"
    user.ok("projects:create", project)
    [(pid,)] = await db.fetch("SELECT id FROM project WHERE name = $1", project)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    for i in range(20):
        await db.fetch(
            "INSERT INTO process_metric (project_id, process, resolution, at, replicas, "
            "cpu_cores, memory_bytes, memory_limit_bytes, net_rx_bytes_per_second, "
            "net_tx_bytes_per_second, restarts) VALUES ($1, 'web', 10, $2, 1, $3, $4, $5, "
            "100, 50, 0)",
            pid,
            start + timedelta(seconds=10 * i),
            i / 20,
            (64 + i) * MB,
            256 * MB,
        )
    buckets = [0] * histogram.BUCKETS
    buckets[histogram.bucket_of(20)] = 30
    await db.fetch(
        "INSERT INTO request_metric (project_id, resolution, at, requests, status_1xx, "
        "status_2xx, status_3xx, status_4xx, status_5xx, latency_buckets) "
        "VALUES ($1, 10, $2, 30, 0, 28, 0, 0, 2, $3)",
        pid,
        start,
        json.dumps(buckets),
    )
    return project


def test_sparkline_scales_to_the_top_and_keeps_gaps() -> None:
    assert sparkline([0, 5, 10]) == SPARKS[0] + SPARKS[4] + SPARKS[-1]
    assert sparkline([1, None, 1], top=2) == SPARKS[4] + " " + SPARKS[4]
    assert sparkline([0, 0]) == SPARKS[0] * 2
    assert len(sparkline(list(range(100)), width=40)) == 40


async def test_metrics_table_and_json(user: Cli, api: tuple[str, RawDb]) -> None:
    project = await _with_points(user, api[1])
    data = user.ok("metrics", project, "--range", "15m", "--json").json()
    assert data["resolutionSeconds"] == 10
    [web] = data["processes"]
    assert len(web["points"]) == 20 and web["points"][-1]["memoryBytes"] == 83 * MB
    assert data["requests"][0]["status5xx"] == 2
    table = user.ok("metrics", project, "-r", "15m").out
    for text in ("web cpu", "web memory", "83.0 MiB / 256.0 MiB", "requests", "latency p95"):
        assert text in table, table
    assert SPARKS[-1] in table  # the CPU line peaks at its last point


async def test_metrics_without_points_says_so(user: Cli) -> None:
    project = f"t-{secrets.token_hex(4)}"
    user.ok("projects:create", project)
    assert "no metrics for" in user.ok("metrics", "-p", project).err


def test_bad_range_and_foreign_projects_are_refused(
    user: Cli, api: tuple[str, RawDb], tmp_path: Path
) -> None:
    project = f"t-{secrets.token_hex(4)}"
    user.ok("projects:create", project)
    bad = user.fails(2, "metrics", project, "--range", "2y")
    assert "--range" in bad.err and "1h" in bad.err
    other = new_cli(api[0], tmp_path)
    other.signup()
    refused = other.fails(4, "metrics", project)
    assert "not found" in refused.err.lower(), refused
    assert "web" not in refused.out
