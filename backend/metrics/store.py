"""Metrics storage in the API's database: 10 s rows for a day, 5 min rows for 30 days.

Writes: the collector's container samples and the ingress's request windows, each at the 10 s
bucket it arrived in. `rollup` turns finished 5 min windows of 10 s rows into one row each (sums
and bucket-wise histogram sums, so percentiles stay computable); `prune` deletes 10 s rows older
than a day and 5 min rows older than 30 days. Both run every 5 minutes (collector.py): per
project and process, the tables hold at most 8 640 + 8 640 rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from backend.db.models import ProcessMetric, Project, RequestMetric
from backend.metrics.histogram import BUCKETS, merge

FINE = 10  # seconds per row, for FINE_KEEP
COARSE = 300  # seconds per row once downsampled, for COARSE_KEEP
FINE_KEEP = timedelta(days=1)
COARSE_KEEP = timedelta(days=30)

# Ranges the API serves, and the resolution each is read at.
RANGES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
FINE_RANGES = frozenset({"15m", "1h", "6h"})


def bucket(at: datetime, seconds: int) -> datetime:
    stamp = int(at.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, UTC)


@dataclass(slots=True)
class ProcessPoint:
    """One process of one project at one bucket: its replicas summed."""

    replicas: int = 0
    cpu_cores: float = 0.0
    memory_bytes: int = 0
    memory_limit_bytes: int = 0
    net_rx_bytes_per_second: float = 0.0
    net_tx_bytes_per_second: float = 0.0
    restarts: int = 0


@dataclass(slots=True)
class RequestCounts:
    requests: int = 0
    status_1xx: int = 0
    status_2xx: int = 0
    status_3xx: int = 0
    status_4xx: int = 0
    status_5xx: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, other: RequestCounts) -> None:
        self.requests += other.requests
        self.status_1xx += other.status_1xx
        self.status_2xx += other.status_2xx
        self.status_3xx += other.status_3xx
        self.status_4xx += other.status_4xx
        self.status_5xx += other.status_5xx
        merge(self.latency_buckets, other.latency_buckets)


def aggregate_processes(
    samples: Iterable[tuple[str, str, ProcessPoint]],
) -> dict[tuple[str, str], ProcessPoint]:
    """(project, process, one replica's point) -> one point per project and process."""
    out: dict[tuple[str, str], ProcessPoint] = defaultdict(ProcessPoint)
    for project, process, one in samples:
        point = out[(project, process)]
        point.replicas += 1
        point.cpu_cores += one.cpu_cores
        point.memory_bytes += one.memory_bytes
        point.memory_limit_bytes += one.memory_limit_bytes
        point.net_rx_bytes_per_second += one.net_rx_bytes_per_second
        point.net_tx_bytes_per_second += one.net_tx_bytes_per_second
        point.restarts += one.restarts
    return dict(out)


async def _project_ids(names: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = await Project.filter(name__in=wanted).values_list("name", "id")
    return {name: pid for name, pid in rows}


async def store_processes(
    points: dict[tuple[str, str], ProcessPoint], at: datetime
) -> dict[int, dict[str, ProcessPoint]]:
    """Stores one 10 s row per project and process; answers the stored points by project id
    (the collector publishes them). A bucket already written is kept (ignore_conflicts)."""
    ids = await _project_ids(project for project, _ in points)
    when = bucket(at, FINE)
    rows = []
    stored: dict[int, dict[str, ProcessPoint]] = defaultdict(dict)
    for (project, process), p in points.items():
        pid = ids.get(project)
        if pid is None:  # a container of a deleted project, not yet removed
            continue
        stored[pid][process] = p
        rows.append(
            ProcessMetric(project_id=pid, process=process, resolution=FINE, at=when, **_fields(p))
        )
    if rows:
        await ProcessMetric.bulk_create(rows, ignore_conflicts=True)
    return dict(stored)


def _fields(p: ProcessPoint) -> dict[str, float | int]:
    return {
        "replicas": p.replicas,
        "cpu_cores": p.cpu_cores,
        "memory_bytes": p.memory_bytes,
        "memory_limit_bytes": p.memory_limit_bytes,
        "net_rx_bytes_per_second": p.net_rx_bytes_per_second,
        "net_tx_bytes_per_second": p.net_tx_bytes_per_second,
        "restarts": p.restarts,
    }


async def store_requests(
    windows: dict[str, RequestCounts], at: datetime
) -> dict[int, RequestCounts]:
    """Adds the ingress's counts to the project's 10 s row of `at` (two reports in one bucket
    add up). Unknown projects are ignored: the ingress reports what it routed."""
    ids = await _project_ids(windows)
    when = bucket(at, FINE)
    stored: dict[int, RequestCounts] = {}
    for project, counts in windows.items():
        pid = ids.get(project)
        if pid is None:
            continue
        row = await RequestMetric.get_or_none(project_id=pid, resolution=FINE, at=when)
        if row is None:
            row = RequestMetric(project_id=pid, resolution=FINE, at=when, latency_buckets=[])
        total = _counts(row)
        total.add(counts)
        _set_counts(row, total)
        await row.save()
        stored[pid] = total
    return stored


def _counts(row: RequestMetric) -> RequestCounts:
    counts = RequestCounts(
        requests=row.requests,
        status_1xx=row.status_1xx,
        status_2xx=row.status_2xx,
        status_3xx=row.status_3xx,
        status_4xx=row.status_4xx,
        status_5xx=row.status_5xx,
    )
    merge(counts.latency_buckets, list(row.latency_buckets or []))
    return counts


def _set_counts(row: RequestMetric, c: RequestCounts) -> None:
    row.requests = c.requests
    row.status_1xx = c.status_1xx
    row.status_2xx = c.status_2xx
    row.status_3xx = c.status_3xx
    row.status_4xx = c.status_4xx
    row.status_5xx = c.status_5xx
    row.latency_buckets = list(c.latency_buckets)


async def rollup(now: datetime) -> int:
    """Downsample every finished 5 min window not yet downsampled (within the fine rows' day).
    Answers how many coarse rows were written. Idempotent: a window's rows are written once."""
    end = bucket(now, COARSE)
    written = 0
    last = await ProcessMetric.filter(resolution=COARSE).order_by("-at").first()
    start = _start(last.at if last else None, now)
    fine = await ProcessMetric.filter(resolution=FINE, at__gte=start, at__lt=end)
    groups: dict[tuple[int, str, datetime], list[ProcessMetric]] = defaultdict(list)
    for row in fine:
        groups[(row.project_id, row.process, bucket(row.at, COARSE))].append(row)
    coarse = [
        ProcessMetric(project_id=pid, process=process, resolution=COARSE, at=when, **_down(rows))
        for (pid, process, when), rows in groups.items()
    ]
    if coarse:
        await ProcessMetric.bulk_create(coarse, ignore_conflicts=True)
        written += len(coarse)

    last_req = await RequestMetric.filter(resolution=COARSE).order_by("-at").first()
    start = _start(last_req.at if last_req else None, now)
    req_groups: dict[tuple[int, datetime], RequestCounts] = defaultdict(RequestCounts)
    for req in await RequestMetric.filter(resolution=FINE, at__gte=start, at__lt=end):
        req_groups[(req.project_id, bucket(req.at, COARSE))].add(_counts(req))
    req_rows: list[RequestMetric] = []
    for (pid, when), counts in req_groups.items():
        req = RequestMetric(project_id=pid, resolution=COARSE, at=when)
        _set_counts(req, counts)
        req_rows.append(req)
    if req_rows:
        await RequestMetric.bulk_create(req_rows, ignore_conflicts=True)
        written += len(req_rows)
    return written


def _start(last_coarse: datetime | None, now: datetime) -> datetime:
    oldest = bucket(now - FINE_KEEP, COARSE)
    if last_coarse is None:
        return oldest
    return max(oldest, last_coarse + timedelta(seconds=COARSE))


def _down(rows: Sequence[ProcessMetric]) -> dict[str, float | int]:
    """A 5 min row from its 10 s rows: mean CPU and network, peak memory and limit (what a
    limit is about), peak replicas, the last restart count (a running total)."""
    n = len(rows)
    return {
        "replicas": max(r.replicas for r in rows),
        "cpu_cores": sum(r.cpu_cores for r in rows) / n,
        "memory_bytes": max(r.memory_bytes for r in rows),
        "memory_limit_bytes": max(r.memory_limit_bytes for r in rows),
        "net_rx_bytes_per_second": sum(r.net_rx_bytes_per_second for r in rows) / n,
        "net_tx_bytes_per_second": sum(r.net_tx_bytes_per_second for r in rows) / n,
        "restarts": max(r.restarts for r in rows),
    }


async def prune(now: datetime) -> int:
    """Delete what is past its retention; answers how many rows went."""
    deleted = 0
    for model in (ProcessMetric, RequestMetric):
        deleted += await model.filter(resolution=FINE, at__lt=now - FINE_KEEP).delete()
        deleted += await model.filter(resolution=COARSE, at__lt=now - COARSE_KEEP).delete()
    return deleted


@dataclass(slots=True)
class Series:
    resolution: int
    processes: dict[str, list[tuple[datetime, ProcessPoint]]]
    requests: list[tuple[datetime, RequestCounts]]


async def read(project_id: int, range_name: str, now: datetime) -> Series:
    """The project's rows for a range (a key of RANGES), oldest first."""
    resolution = FINE if range_name in FINE_RANGES else COARSE
    since = now - RANGES[range_name]
    processes: dict[str, list[tuple[datetime, ProcessPoint]]] = defaultdict(list)
    rows = await ProcessMetric.filter(
        project_id=project_id, resolution=resolution, at__gte=since, at__lte=now
    ).order_by("at")
    for row in rows:
        processes[row.process].append((row.at, _point_of(row)))
    requests = [
        (row.at, _counts(row))
        for row in await RequestMetric.filter(
            project_id=project_id, resolution=resolution, at__gte=since, at__lte=now
        ).order_by("at")
    ]
    return Series(resolution, dict(sorted(processes.items())), requests)


def _point_of(row: ProcessMetric) -> ProcessPoint:
    return ProcessPoint(
        replicas=row.replicas,
        cpu_cores=row.cpu_cores,
        memory_bytes=row.memory_bytes,
        memory_limit_bytes=row.memory_limit_bytes,
        net_rx_bytes_per_second=row.net_rx_bytes_per_second,
        net_tx_bytes_per_second=row.net_tx_bytes_per_second,
        restarts=row.restarts,
    )
