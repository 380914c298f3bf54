"""Per-project request metrics from Traefik's Prometheus endpoint (production, issue 18).

With Traefik in front (traefik/), the embedded ingress sees no app request; Traefik counts them
instead. When ``traefik_metrics_url`` is set, the API scrapes it every sample period, parses the
text with prometheus_client's parser and turns the counters' increases since the previous scrape
into the same per-project windows the embedded ingress reports (store.RequestCounts), stored by
the same collector.

- Series: ``traefik_service_requests_total{code,method,protocol,service}`` and the histogram
  ``traefik_service_request_duration_seconds_bucket{...,le}``; when Traefik has no service labels,
  the router ones (``traefik_router_*{router,service}``) instead, never both (no double count).
- Names -> projects: Pomegranate names a project's router and service after the project
  (backend/labels.py), so Traefik reports ``<project>@docker`` (``@swarm`` on Swarm); the file
  provider's custom-domain router is ``<project>-domains@file`` (backend/routing.py). Anything
  else (the platform's own routes, ``@internal``) is no project's and is skipped.
- Latency: traefik.yml sets the histogram buckets to histogram.BOUNDS_MS, so each Traefik bucket
  is exactly one of ours; other bounds land in the bucket holding their upper bound.
- Counters are cumulative: the first scrape is the baseline; a counter that went down (Traefik
  restarted) counts from zero again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

from backend.metrics.histogram import BOUNDS_MS, BUCKETS, bucket_of
from backend.metrics.store import RequestCounts
from backend.validation import PROJECT_NAME_RE

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("paastech.metrics.traefik")

SCRAPE_TIMEOUT_SECONDS = 5.0
MAX_BODY_BYTES = 32 * 2**20  # a /metrics answer larger than this is refused, not parsed
PROJECT_PROVIDERS = ("docker", "swarm")  # the providers reading Pomegranate's labels
DOMAINS_ROUTER_SUFFIX = "-domains"  # backend/routing.py's custom-domain routers

# (level = the label naming the router or service, its requests counter, its duration histogram)
_LEVELS = (
    ("service", "traefik_service_requests_total", "traefik_service_request_duration_seconds"),
    ("router", "traefik_router_requests_total", "traefik_router_request_duration_seconds"),
)


def project_of(name: str) -> str | None:
    """A Traefik router or service name -> the project it belongs to, or None."""
    base, at, provider = name.rpartition("@")
    if not at:
        return None
    if provider == "file" and base.endswith(DOMAINS_ROUTER_SUFFIX):
        base = base.removesuffix(DOMAINS_ROUTER_SUFFIX)
    elif provider not in PROJECT_PROVIDERS:
        return None
    return base if PROJECT_NAME_RE.fullmatch(base) and "--" not in base else None


# One series: (sample name, its labels sorted) -> its cumulative value.
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The counters of one scrape that belong to projects, at the chosen level."""

    values: dict[SeriesKey, float]


def parse(text: str) -> Snapshot:
    """Traefik's /metrics text -> the project series of the service level (or, when Traefik
    exports none, the router level). Raises ValueError for text that is not Prometheus format."""
    found: dict[str, dict[SeriesKey, float]] = {"service": {}, "router": {}}
    wanted = {total: level for level, total, _ in _LEVELS}
    wanted |= {f"{hist}_bucket": level for level, _, hist in _LEVELS}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            level = wanted.get(sample.name)
            if level is None:
                continue
            if project_of(sample.labels.get(level, "")) is None:
                continue
            value = float(sample.value)
            if not math.isfinite(value) or value < 0:
                continue
            key = (sample.name, tuple(sorted(sample.labels.items())))
            found[level][key] = value
    return Snapshot(found["service"] or found["router"])


def increase(previous: Snapshot | None, current: Snapshot) -> dict[SeriesKey, float]:
    """How much each series grew since ``previous``; a series that went down restarted."""
    if previous is None:
        return {}
    out: dict[SeriesKey, float] = {}
    for key, value in current.values.items():
        before = previous.values.get(key, 0.0)
        grown = value - before if value >= before else value
        if grown > 0:
            out[key] = grown
    return out


def windows(increases: dict[SeriesKey, float]) -> dict[str, RequestCounts]:
    """Series increases -> per-project counts: requests by status class, latency buckets."""
    out: dict[str, RequestCounts] = defaultdict(RequestCounts)
    # One histogram series (all labels but `le`) -> its le bounds' increases, cumulative.
    histograms: dict[tuple[str, tuple[tuple[str, str], ...]], dict[float, float]] = defaultdict(
        dict
    )
    for (name, labels), grown in increases.items():
        tags = dict(labels)
        level = "service" if name.startswith("traefik_service_") else "router"
        project = project_of(tags.get(level, ""))
        if project is None:
            continue
        if name.endswith("_requests_total"):
            _count(out[project], tags.get("code", ""), round(grown))
        elif name.endswith("_bucket"):
            le = _bound(tags.get("le", ""))
            if le is not None:
                rest = tuple((k, v) for k, v in labels if k != "le")
                histograms[(project, rest)][le] = grown
    for (project, _), cumulative in histograms.items():
        _add_histogram(out[project], cumulative)
    return dict(out)


def _count(counts: RequestCounts, code: str, n: int) -> None:
    counts.requests += n
    cls = int(code) // 100 if code.isdigit() else 0
    if 1 <= cls <= 5:
        name = f"status_{cls}xx"
        setattr(counts, name, getattr(counts, name) + n)


def _bound(le: str) -> float | None:
    try:
        value = float(le)
    except ValueError:
        return None
    return value if value > 0 else None


def _add_histogram(counts: RequestCounts, cumulative: dict[float, float]) -> None:
    below = 0.0
    for le in sorted(cumulative):
        in_bucket = max(0.0, cumulative[le] - below)
        below = max(below, cumulative[le])
        index = BUCKETS - 1 if math.isinf(le) else bucket_of(round(le * 1000.0, 6))
        counts.latency_buckets[index] += round(in_bucket)


Sink = Callable[[dict[str, RequestCounts], datetime], Awaitable[None]]


class TraefikScraper:
    """Scrapes Traefik's /metrics each period and hands the windows to ``sink``
    (MetricsCollector.record_windows)."""

    def __init__(self, url: str, sink: Sink, period: float) -> None:
        self.url = url
        self.sink = sink
        self.period = period
        self.previous: Snapshot | None = None
        self.scrapes_total = 0
        self.scrape_failures_total = 0
        self._task: asyncio.Task[None] | None = None

    async def scrape(self, http: httpx.AsyncClient, now: datetime) -> dict[str, RequestCounts]:
        """One scrape: the per-project windows since the previous one (stored by the sink)."""
        answer = await http.get(self.url, timeout=SCRAPE_TIMEOUT_SECONDS)
        answer.raise_for_status()
        if len(answer.content) > MAX_BODY_BYTES:
            raise ValueError(f"Traefik's /metrics answer is over {MAX_BODY_BYTES} bytes")
        current = parse(answer.text)
        found = windows(increase(self.previous, current))
        self.previous = current
        self.scrapes_total += 1
        if found:
            await self.sink(found, now)
        return found

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        import httpx  # here: only an API behind Traefik scrapes (httpx costs about 5 MB)

        failing = False
        async with httpx.AsyncClient(follow_redirects=False) as http:
            while True:
                try:
                    await self.scrape(http, datetime.now(UTC))
                except Exception as exc:  # Traefik restarting or misconfigured: next period
                    level = logging.DEBUG if failing else logging.WARNING
                    log.log(level, "Traefik metrics scrape of %s failed: %s", self.url, exc)
                    self.scrape_failures_total += 1
                    failing = True
                else:
                    failing = False
                await asyncio.sleep(self.period)


def bucket_bounds_seconds() -> list[float]:
    """The histogram bounds traefik.yml lists (histogram.BOUNDS_MS in seconds)."""
    return [b / 1000.0 for b in BOUNDS_MS]
