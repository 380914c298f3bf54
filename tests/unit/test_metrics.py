"""Metrics (issue 18): the histogram, the ingress's request meter, the engine-stats arithmetic,
and the store's retention and downsampling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from tortoise import Tortoise

from backend import labels as L
from backend.db.models import Client, ProcessMetric, Project, RequestMetric
from backend.metrics import histogram, store
from backend.metrics.collector import counts_from, points_from
from backend.metrics.containers import (
    ContainerSampler,
    cpu_cores,
    memory_bytes,
    network_bytes,
    ownership_of,
)
from backend.metrics.requests import RequestMeter, to_report
from backend.metrics.store import ProcessPoint, RequestCounts
from backend.metrics.swarm import SwarmSampler
from backend.rpc import platform_pb2 as ppb
from backend.rpc import pomegranate_types as pt

NOW = datetime(2026, 12, 3, 12, 0, 3, tzinfo=UTC)


# ---------------------------------------------------------------------------------- histogram


def test_percentiles_from_buckets() -> None:
    counts = [0] * histogram.BUCKETS
    for ms in [3] * 50 + [40] * 45 + [900] * 4 + [120_000]:  # the last one overflows
        counts[histogram.bucket_of(ms)] += 1
    assert histogram.percentile(counts, 0.50) == 5
    assert histogram.percentile(counts, 0.95) == 50
    assert histogram.percentile(counts, 0.99) == 1000
    assert histogram.percentile(counts, 1.0) == histogram.BOUNDS_MS[-1]
    assert histogram.percentile([0] * histogram.BUCKETS, 0.5) is None


def test_bucket_bounds_are_inclusive() -> None:
    assert histogram.bucket_of(0.2) == 0
    assert histogram.bucket_of(1) == 0
    assert histogram.bucket_of(1.01) == 1
    assert histogram.bucket_of(10**9) == histogram.BUCKETS - 1


# ---------------------------------------------------------------------------------- ingress meter


def test_meter_counts_classes_and_latency_per_project() -> None:
    meter = RequestMeter()
    meter.record("blog", 200, 0.004)
    meter.record("blog", 204, 0.004)
    meter.record("blog", 503, 2.0)
    meter.record("shop", 404, 0.0005)
    meter.record("shop", 0, 0.1)  # the client went away: counted, in no status class
    window = meter.take()
    assert window["blog"].requests == 3
    assert window["blog"].classes == [0, 0, 2, 0, 0, 1]
    assert window["blog"].latency[histogram.bucket_of(4)] == 2
    assert window["blog"].latency[histogram.bucket_of(2000)] == 1
    assert window["shop"].classes == [1, 0, 0, 0, 1, 0]
    assert meter.take() == {}  # a fresh window after each take


def test_meter_keeps_an_undelivered_window() -> None:
    meter = RequestMeter()
    meter.record("blog", 200, 0.01)
    lost = meter.take()
    meter.record("blog", 500, 0.01)
    meter.put_back(lost)
    window = meter.take()
    assert window["blog"].requests == 2
    assert window["blog"].classes[2] == 1 and window["blog"].classes[5] == 1


def test_report_round_trip_and_hostile_values() -> None:
    meter = RequestMeter()
    meter.record("blog", 200, 0.01)
    report = to_report(meter.take())
    counts = counts_from(ppb.RequestReport.FromString(report.SerializeToString()))
    assert counts["blog"].requests == 1 and counts["blog"].status_2xx == 1
    # Negative or oversized histograms (a broken reporter) are clamped, never stored as is.
    bad = ppb.RequestReport(
        projects=[
            ppb.ProjectRequests(project="x", requests=-5),
            ppb.ProjectRequests(project="y", requests=1, latency_buckets=[-3] + [1] * 99),
            ppb.ProjectRequests(project="", requests=1),
        ]
    )
    parsed = counts_from(bad)
    assert set(parsed) == {"y"}
    assert len(parsed["y"].latency_buckets) == histogram.BUCKETS
    assert parsed["y"].latency_buckets[0] == 0


# ---------------------------------------------------------------------------------- engine stats

STATS = {
    "read": "2026-12-03T12:00:00.123456789Z",
    "cpu_stats": {
        "cpu_usage": {"total_usage": 3_000_000_000},
        "system_cpu_usage": 20_000_000_000,
        "online_cpus": 2,
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 2_000_000_000},
        "system_cpu_usage": 18_000_000_000,
    },
    "memory_stats": {"usage": 50_000_000, "limit": 268_435_456, "stats": {"inactive_file": 1e7}},
    "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 500}},
}


def test_engine_stats_arithmetic() -> None:
    # 1 s of CPU in 2 s of both cores' time, on 2 cores: one core busy.
    assert cpu_cores(STATS) == pytest.approx(1.0)
    assert memory_bytes(STATS) == 40_000_000
    assert network_bytes(STATS) == (1000, 500)
    assert cpu_cores({"cpu_stats": {}, "precpu_stats": {}}) == 0.0
    cgroup_v1 = {"memory_stats": {"usage": 10, "stats": {"total_inactive_file": 4}}}
    assert memory_bytes(cgroup_v1) == 6


def test_sampler_rates_and_restarts() -> None:
    sampler = ContainerSampler(docker=None, instance="paastech")  # type: ignore[arg-type]
    owner = L.Ownership(project="blog", application=3, process="web", replica=1)
    first = sampler._sample("c1", owner, STATS)
    assert first.net_rx_bytes_per_second == 0 and first.restarts == 0
    later = dict(STATS, read="2026-12-03T12:00:10.123456789Z")
    later["networks"] = {"eth0": {"rx_bytes": 11_000, "tx_bytes": 2500}}
    second = sampler._sample("c1", owner, later)
    assert second.net_rx_bytes_per_second == pytest.approx(1000)
    assert second.net_tx_bytes_per_second == pytest.approx(200)
    # The slot now held by another container of the same release: a restart.
    third = sampler._sample("c2", owner, later)
    assert third.restarts == 1
    # A newer release running: the old release's slots are forgotten.
    sampler._forget_old_slots([("c9", L.Ownership("blog", 4, "web", 1))])
    assert not sampler._slots and not sampler._restarts


def test_points_sum_replicas_per_process() -> None:
    samples = [
        pt.ContainerStats(project="blog", process="web", cpu_cores=0.5, memory_bytes=10),
        pt.ContainerStats(project="blog", process="web", cpu_cores=0.25, memory_bytes=5),
        pt.ContainerStats(project="blog", process="worker", memory_bytes=7),
    ]
    points = points_from(samples)
    assert points[("blog", "web")].replicas == 2
    assert points[("blog", "web")].cpu_cores == pytest.approx(0.75)
    assert points[("blog", "web")].memory_bytes == 15
    assert points[("blog", "worker")].memory_bytes == 7


# ---------------------------------------------------------------------------------- store


@pytest.fixture
async def project() -> AsyncIterator[Project]:
    await Tortoise.init(
        db_url="sqlite://:memory:", modules={"models": ["backend.db.models"]}, use_tz=True
    )
    await Tortoise.generate_schemas()
    owner = await Client.create(email="m@example.com", username="metrics", password_hash="x")
    yield await Project.create(owner=owner, name="blog")
    await Tortoise.close_connections()


def _point(cpu: float, memory: int) -> ProcessPoint:
    return ProcessPoint(replicas=1, cpu_cores=cpu, memory_bytes=memory, memory_limit_bytes=1000)


def _requests(status: int, ms: float, n: int = 1) -> RequestCounts:
    counts = RequestCounts(requests=n)
    setattr(counts, f"status_{status // 100}xx", n)
    counts.latency_buckets[histogram.bucket_of(ms)] += n
    return counts


async def test_store_ignores_unknown_projects_and_keeps_a_written_bucket(project: Project) -> None:
    stored = await store.store_processes(
        {("blog", "web"): _point(0.5, 100), ("ghost", "web"): _point(1, 1)}, NOW
    )
    assert list(stored) == [project.id]
    await store.store_processes({("blog", "web"): _point(0.9, 900)}, NOW + timedelta(seconds=1))
    rows = await ProcessMetric.all()
    assert len(rows) == 1 and rows[0].memory_bytes == 100
    assert rows[0].at == datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


async def test_request_reports_in_one_bucket_add_up(project: Project) -> None:
    await store.store_requests({"blog": _requests(200, 3, n=4)}, NOW)
    await store.store_requests({"blog": _requests(500, 700), "ghost": _requests(200, 1)}, NOW)
    row = await RequestMetric.get(project_id=project.id)
    assert (row.requests, row.status_2xx, row.status_5xx) == (5, 4, 1)
    assert sum(row.latency_buckets) == 5
    assert await RequestMetric.all().count() == 1


async def test_rollup_downsamples_finished_windows_once(project: Project) -> None:
    start = datetime(2026, 12, 3, 11, 0, 0, tzinfo=UTC)
    for i in range(60):  # 10 minutes of 10 s rows: two full 5 min windows
        at = start + timedelta(seconds=10 * i)
        await store.store_processes({("blog", "web"): _point(i % 2, 100 + i)}, at)
        await store.store_requests({"blog": _requests(200, 3 if i < 30 else 800)}, at)
    # Half of a third window: not finished at "now", not downsampled yet.
    for i in range(60, 75):
        await store.store_processes(
            {("blog", "web"): _point(0, 1)}, start + timedelta(seconds=10 * i)
        )
    now = start + timedelta(minutes=12, seconds=30)
    assert await store.rollup(now) == 4  # two process rows, two request rows
    assert await store.rollup(now) == 0  # idempotent
    coarse = await ProcessMetric.filter(resolution=store.COARSE).order_by("at")
    assert [r.at for r in coarse] == [start, start + timedelta(minutes=5)]
    assert coarse[0].cpu_cores == pytest.approx(0.5)  # mean
    assert coarse[0].memory_bytes == 129 and coarse[1].memory_bytes == 159  # peak
    requests = await RequestMetric.filter(resolution=store.COARSE).order_by("at")
    assert [r.requests for r in requests] == [30, 30]
    assert histogram.percentile(requests[0].latency_buckets, 0.99) == 5
    assert histogram.percentile(requests[1].latency_buckets, 0.5) == 1000
    # The half window, once finished, is downsampled by a later run.
    assert await store.rollup(start + timedelta(minutes=16)) == 1


async def test_prune_keeps_a_day_of_fine_and_thirty_days_of_coarse(project: Project) -> None:
    rows = [
        ProcessMetric(project_id=project.id, process="web", resolution=res, at=NOW - age)
        for res, age in [
            (store.FINE, timedelta(hours=23)),
            (store.FINE, timedelta(hours=25)),
            (store.COARSE, timedelta(days=29)),
            (store.COARSE, timedelta(days=31)),
        ]
    ]
    await ProcessMetric.bulk_create(rows)
    await RequestMetric.create(
        project_id=project.id, resolution=store.FINE, at=NOW - timedelta(days=2)
    )
    assert await store.prune(NOW) == 3
    left = await ProcessMetric.all().order_by("at")
    assert [(r.resolution, NOW - r.at) for r in left] == [
        (store.COARSE, timedelta(days=29)),
        (store.FINE, timedelta(hours=23)),
    ]
    assert await RequestMetric.all().count() == 0


async def test_read_picks_the_resolution_of_the_range(project: Project) -> None:
    await store.store_processes({("blog", "web"): _point(0.5, 100)}, NOW - timedelta(minutes=1))
    await ProcessMetric.create(
        project_id=project.id,
        process="web",
        resolution=store.COARSE,
        at=NOW - timedelta(days=3),
        memory_bytes=7,
    )
    fine = await store.read(project.id, "1h", NOW)
    assert fine.resolution == store.FINE and len(fine.processes["web"]) == 1
    coarse = await store.read(project.id, "7d", NOW)
    assert coarse.resolution == store.COARSE
    assert [p.memory_bytes for _, p in coarse.processes["web"]] == [7]
    assert (await store.read(project.id, "15m", NOW - timedelta(hours=2))).processes == {}


class FakePomegranate:
    def __init__(self, samples: list[pt.ContainerStats]) -> None:
        self.samples = samples

    async def sample_stats(self) -> list[pt.ContainerStats]:
        return self.samples


async def test_collector_stores_and_publishes_each_sample(project: Project) -> None:
    from backend.events import get_bus, metrics_topic
    from backend.metrics.collector import MetricsCollector
    from backend.settings import Settings

    fake = FakePomegranate(
        [
            pt.ContainerStats(project="blog", process="web", memory_bytes=10, cpu_cores=0.5),
            pt.ContainerStats(project="blog", process="web", memory_bytes=30),
            pt.ContainerStats(project="ghost", process="web", memory_bytes=1),
        ]
    )
    collector = MetricsCollector(fake, Settings())  # type: ignore[arg-type]
    async with get_bus().subscribe(metrics_topic(project.id)) as events:
        await collector.sample(NOW)
        report = ppb.RequestReport(
            projects=[ppb.ProjectRequests(project="blog", requests=2, status_2xx=2)]
        )
        await collector.record_requests(report, NOW)
        first, second = await anext(events), await anext(events)
    assert first.payload["processes"]["web"]["memory_bytes"] == 40
    assert first.payload["processes"]["web"]["replicas"] == 2
    assert second.payload["requests"]["status_2xx"] == 2
    [row] = await ProcessMetric.all()
    assert (row.memory_bytes, row.replicas, row.cpu_cores) == (40, 2, 0.5)
    assert collector.latest[("ghost", "web")].memory_bytes == 1  # /metrics shows it still
    assert collector.request_totals[("blog", "2xx")] == 2


# ---------------------------------------------------------------------------------- Swarm


class FakeEngine:
    """The part of aiodocker the sampler uses: list running containers, one stats reading."""

    def __init__(self, containers: dict[str, dict[str, str]], fail: bool = False) -> None:
        self.listed = containers
        self.fail = fail
        self.containers = self

    async def list(self, filters: dict) -> list:
        if self.fail:
            raise OSError("node unreachable")
        return [
            SimpleNamespace(id=cid, _container={"Labels": lb}) for cid, lb in self.listed.items()
        ]

    def container(self, container_id: str) -> SimpleNamespace:
        async def stats(**_: object) -> list[dict]:
            return [STATS]

        return SimpleNamespace(stats=stats)


def _task_labels(project: str, slot: str) -> dict[str, str]:
    return {
        **L.ownership_labels(project, 2, "web", instance="paastech"),
        "com.docker.swarm.task.name": f"paastech_{project}_web.{slot}.x1y2z3",
    }


def test_a_swarm_tasks_replica_is_its_slot() -> None:
    assert ownership_of(_task_labels("blog", "3")) == L.Ownership("blog", 2, "web", 3)
    for bad in ("", "paastech_blog_web", "paastech_blog_web.x.y", "a.0.b"):
        labels = {**_task_labels("blog", "1"), "com.docker.swarm.task.name": bad}
        assert ownership_of(labels) is None
    # A container with its own replica label keeps it (the docker runtime's).
    plain = L.ownership_labels("blog", 1, "web", 2, instance="paastech")
    assert ownership_of(plain) == L.Ownership("blog", 1, "web", 2)


async def test_swarm_samples_every_node_engine_and_skips_an_unreachable_one() -> None:
    sampler = SwarmSampler(
        {
            "manager": FakeEngine({"a": _task_labels("blog", "1")}),  # type: ignore[dict-item]
            "node2": FakeEngine({"b": _task_labels("blog", "2"), "c": {}}),  # type: ignore[dict-item]
            "node3": FakeEngine({}, fail=True),  # type: ignore[dict-item]
        },
        "paastech",
    )
    samples = await sampler.sample()
    assert sorted((s.project, s.replica, s.container_id) for s in samples) == [
        ("blog", 1, "a"),
        ("blog", 2, "b"),  # "c" is no container of ours
    ]
    assert all(s.memory_bytes == 40_000_000 for s in samples)
