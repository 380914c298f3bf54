"""The API's /metrics for operators (Prometheus text format, prometheus-client), behind the
operator token (settings.metrics_token as a bearer token; 401 without it or when unset)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from backend.api.context import bearer_from_header
from backend.metrics.collector import MetricsCollector, get_collector
from backend.settings import Settings


class PlatformCollector:
    """Reads the collector's latest values at scrape time (nothing kept twice)."""

    def __init__(self, source: MetricsCollector) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        labels = ["project", "process"]
        gauges = {
            "cpu_cores": GaugeMetricFamily(
                "paastech_process_cpu_cores", "CPU cores in use by a process", labels=labels
            ),
            "memory_bytes": GaugeMetricFamily(
                "paastech_process_memory_bytes", "Memory in use by a process", labels=labels
            ),
            "memory_limit_bytes": GaugeMetricFamily(
                "paastech_process_memory_limit_bytes", "Memory limit of a process", labels=labels
            ),
            "replicas": GaugeMetricFamily(
                "paastech_process_replicas", "Running replicas of a process", labels=labels
            ),
            "restarts": GaugeMetricFamily(
                "paastech_process_restarts", "Restarts since Pomegranate started", labels=labels
            ),
        }
        for (project, process), point in sorted(self.source.latest.items()):
            for name, family in gauges.items():
                family.add_metric([project, process], float(getattr(point, name)))
        yield from gauges.values()
        requests = CounterMetricFamily(
            "paastech_requests",
            "Requests to the apps (embedded ingress or Traefik) since the API started",
            labels=["project", "code"],
        )
        for (project, code), count in sorted(self.source.request_totals.items()):
            requests.add_metric([project, code], float(count))
        yield requests
        samples = CounterMetricFamily("paastech_metrics_samples", "Container samples stored")
        samples.add_metric([], float(self.source.samples_total))
        yield samples
        failures = CounterMetricFamily(
            "paastech_metrics_sample_failures", "Container samples that failed"
        )
        failures.add_metric([], float(self.source.sample_failures_total))
        yield failures
        seconds = GaugeMetricFamily(
            "paastech_metrics_sample_seconds", "How long the last container sample took"
        )
        seconds.add_metric([], self.source.last_sample_seconds)
        yield seconds


def authorized(request: Request, expected: str) -> bool:
    sent = bearer_from_header(request.headers.get("authorization")) or ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def metrics_endpoint(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if not authorized(request, settings.metrics_token):
            return PlainTextResponse(
                "send the operator token: Authorization: Bearer <PAASTECH_METRICS_TOKEN>\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        registry = CollectorRegistry(auto_describe=False)
        source = get_collector()
        if source is not None:
            registry.register(PlatformCollector(source))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return endpoint
