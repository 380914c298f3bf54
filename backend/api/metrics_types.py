"""GraphQL types of issue 18's metrics: series per process, requests and latency."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from backend.metrics import histogram, store
from backend.metrics.store import ProcessPoint, RequestCounts


@strawberry.type(description="One process type of a project at one time: its replicas summed.")
class ProcessMetricPoint:
    at: datetime
    replicas: int
    cpu_cores: float = strawberry.field(description="Cores in use (1.0: one full core).")
    memory_bytes: float = strawberry.field(description="Memory in use, without page cache.")
    memory_limit_bytes: float
    net_rx_bytes_per_second: float
    net_tx_bytes_per_second: float
    restarts: int

    @classmethod
    def of(cls, at: datetime, p: ProcessPoint) -> ProcessMetricPoint:
        return cls(
            at=at,
            replicas=p.replicas,
            cpu_cores=p.cpu_cores,
            memory_bytes=float(p.memory_bytes),
            memory_limit_bytes=float(p.memory_limit_bytes),
            net_rx_bytes_per_second=p.net_rx_bytes_per_second,
            net_tx_bytes_per_second=p.net_tx_bytes_per_second,
            restarts=p.restarts,
        )


@strawberry.type
class ProcessSeries:
    process: str
    points: list[ProcessMetricPoint]


@strawberry.type(description="Requests through the ingress in one interval.")
class RequestMetricPoint:
    at: datetime
    requests: int
    per_second: float
    status_1xx: int
    status_2xx: int
    status_3xx: int
    status_4xx: int
    status_5xx: int
    p50_ms: float | None = strawberry.field(description="Upper bound of the latency bucket.")
    p95_ms: float | None
    p99_ms: float | None

    @classmethod
    def of(cls, at: datetime, c: RequestCounts, seconds: int) -> RequestMetricPoint:
        return cls(
            at=at,
            requests=c.requests,
            per_second=c.requests / seconds,
            status_1xx=c.status_1xx,
            status_2xx=c.status_2xx,
            status_3xx=c.status_3xx,
            status_4xx=c.status_4xx,
            status_5xx=c.status_5xx,
            p50_ms=histogram.percentile(c.latency_buckets, 0.50),
            p95_ms=histogram.percentile(c.latency_buckets, 0.95),
            p99_ms=histogram.percentile(c.latency_buckets, 0.99),
        )


@strawberry.type
class ProjectMetrics:
    project: str
    range: str
    resolution_seconds: int
    processes: list[ProcessSeries]
    requests: list[RequestMetricPoint]

    @classmethod
    def of(cls, project: str, range_name: str, series: store.Series) -> ProjectMetrics:
        return cls(
            project=project,
            range=range_name,
            resolution_seconds=series.resolution,
            processes=[
                ProcessSeries(
                    process=name, points=[ProcessMetricPoint.of(at, p) for at, p in points]
                )
                for name, points in series.processes.items()
            ],
            requests=[RequestMetricPoint.of(at, c, series.resolution) for at, c in series.requests],
        )


@strawberry.type(description="A new 10 s point: the processes' sample or the requests' window.")
class MetricsUpdate:
    project: str
    at: datetime
    processes: list[ProcessSeries]
    requests: RequestMetricPoint | None

    @classmethod
    def of(cls, project: str, payload: dict[str, Any]) -> MetricsUpdate:
        at = datetime.fromisoformat(payload["at"])
        processes = [
            ProcessSeries(process=name, points=[ProcessMetricPoint.of(at, ProcessPoint(**p))])
            for name, p in sorted((payload.get("processes") or {}).items())
        ]
        counts = payload.get("requests")
        requests = (
            RequestMetricPoint.of(at, RequestCounts(**counts), store.FINE) if counts else None
        )
        return cls(project=project, at=at, processes=processes, requests=requests)
