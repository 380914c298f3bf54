"""The API's metrics collector: every 10 s asks Pomegranate for one stats sample of every running
app container, stores one row per project and process, and publishes it for the live
subscription; takes the ingress's request windows (platform.proto Metrics); every 5 minutes
downsamples and prunes (store.py). Keeps the latest values for the operators' /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, datetime

import grpc

from backend.alerts.triggers import get_alerts
from backend.events import EventKind, get_bus, metrics_topic
from backend.metrics import store
from backend.metrics.histogram import BUCKETS
from backend.metrics.store import ProcessPoint, RequestCounts
from backend.rpc import platform_pb2 as pb
from backend.rpc import platform_pb2_grpc as pb_grpc
from backend.rpc import pomegranate_types as pt
from backend.rpc.pomegranate_client import PomegranateClient
from backend.settings import Settings

log = logging.getLogger("paastech.metrics")

MAINTENANCE_SECONDS = 300.0


def points_from(samples: list[pt.ContainerStats]) -> dict[tuple[str, str], ProcessPoint]:
    return store.aggregate_processes(
        (
            s.project,
            s.process,
            ProcessPoint(
                replicas=1,
                cpu_cores=s.cpu_cores,
                memory_bytes=s.memory_bytes,
                memory_limit_bytes=s.memory_limit_bytes,
                net_rx_bytes_per_second=s.net_rx_bytes_per_second,
                net_tx_bytes_per_second=s.net_tx_bytes_per_second,
                restarts=s.restarts,
            ),
        )
        for s in samples
    )


def counts_from(report: pb.RequestReport) -> dict[str, RequestCounts]:
    out: dict[str, RequestCounts] = {}
    for p in report.projects:
        if not p.project or p.requests < 0:
            continue
        buckets = [max(0, int(v)) for v in list(p.latency_buckets)[:BUCKETS]]
        counts = RequestCounts(
            requests=p.requests,
            status_1xx=p.status_1xx,
            status_2xx=p.status_2xx,
            status_3xx=p.status_3xx,
            status_4xx=p.status_4xx,
            status_5xx=p.status_5xx,
            latency_buckets=buckets + [0] * (BUCKETS - len(buckets)),
        )
        existing = out.get(p.project)
        if existing is None:
            out[p.project] = counts
        else:
            existing.add(counts)
    return out


class MetricsCollector:
    def __init__(self, client: PomegranateClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        # For /metrics (prometheus.py): the latest point per (project, process), request totals
        # per (project, status class) since this API started, and the sampler's own health.
        self.latest: dict[tuple[str, str], ProcessPoint] = {}
        self.request_totals: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.samples_total = 0
        self.sample_failures_total = 0
        self.last_sample_seconds = 0.0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        last_maintenance = time.monotonic()
        failing = False
        while True:
            started = time.monotonic()
            try:
                await self.sample(datetime.now(UTC))
            except Exception as exc:  # Pomegranate restarting, the database busy: next tick
                # Said once per outage, not every 10 s while Pomegranate is away.
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "metrics sample failed: %s", exc)
                self.sample_failures_total += 1
                failing = True
            else:
                failing = False
            if time.monotonic() - last_maintenance >= MAINTENANCE_SECONDS:
                last_maintenance = time.monotonic()
                try:
                    await self.maintain(datetime.now(UTC))
                except Exception:
                    log.exception("metrics rollup/prune failed")
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.5, self.settings.metrics_sample_seconds - elapsed))

    async def sample(self, now: datetime) -> None:
        started = time.monotonic()
        samples = await self.client.sample_stats()
        points = points_from(samples)
        stored = await store.store_processes(points, now)
        self.latest = points
        await get_alerts().memory_sampled(
            {k: (p.memory_bytes, p.memory_limit_bytes) for k, p in points.items()}, now
        )
        self.samples_total += 1
        self.last_sample_seconds = time.monotonic() - started
        at = store.bucket(now, store.FINE).isoformat()
        bus = get_bus()
        for project_id, processes in stored.items():
            payload = {"at": at, "processes": {k: asdict(v) for k, v in processes.items()}}
            await bus.publish(metrics_topic(project_id), EventKind.METRICS, payload)

    async def record_requests(self, report: pb.RequestReport, now: datetime) -> None:
        await self.record_windows(counts_from(report), now)

    async def record_windows(self, windows: dict[str, RequestCounts], now: datetime) -> None:
        """Per-project request counts, from the embedded ingress or Traefik (traefik.py)."""
        for project, c in windows.items():
            for name, value in (
                ("1xx", c.status_1xx),
                ("2xx", c.status_2xx),
                ("3xx", c.status_3xx),
                ("4xx", c.status_4xx),
                ("5xx", c.status_5xx),
            ):
                if value:
                    self.request_totals[(project, name)] += value
        stored = await store.store_requests(windows, now)
        at = store.bucket(now, store.FINE).isoformat()
        bus = get_bus()
        for project_id, counts in stored.items():
            payload = {"at": at, "requests": asdict(counts)}
            await bus.publish(metrics_topic(project_id), EventKind.METRICS, payload)

    async def maintain(self, now: datetime) -> None:
        written = await store.rollup(now)
        deleted = await store.prune(now)
        log.info("metrics: %d rows downsampled, %d past retention deleted", written, deleted)


_collector: MetricsCollector | None = None


def set_collector(collector: MetricsCollector | None) -> None:
    global _collector
    _collector = collector


def get_collector() -> MetricsCollector | None:
    return _collector


class MetricsServicer(pb_grpc.MetricsServicer):
    """The ingress's request windows (internal gRPC, shared secret)."""

    async def ReportRequests(
        self,
        request: pb.RequestReport,
        context: grpc.aio.ServicerContext[pb.RequestReport, pb.ReportAck],
    ) -> pb.ReportAck:
        collector = get_collector()
        if collector is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the metrics collector is not running")
            raise AssertionError("unreachable")
        await collector.record_requests(request, datetime.now(UTC))
        return pb.ReportAck()
