"""Request counting in the embedded ingress: per project, per 10 s window, status classes and a
latency histogram. The hot path is a dict lookup, a bisect and a few increments; the window is
handed to the API (platform.proto Metrics.ReportRequests) by a background task."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import grpc

from backend.metrics.histogram import BUCKETS, bucket_of
from backend.rpc import platform_pb2 as pb
from backend.rpc import platform_pb2_grpc as pb_grpc
from backend.rpc.auth import call_metadata
from backend.settings import Settings

log = logging.getLogger(__name__)

REPORT_SECONDS = 10.0
REPORT_TIMEOUT_SECONDS = 5.0
# A window the API could not take is kept and merged into the next, up to this many projects
# (an API outage must not grow the ingress's memory without bound).
MAX_PROJECTS = 10_000


@dataclass(slots=True)
class ProjectWindow:
    requests: int = 0
    # 1xx..5xx at 1..5; 0 collects anything else (the proxy's "cancelled": client went away).
    classes: list[int] = field(default_factory=lambda: [0] * 6)
    latency: list[int] = field(default_factory=lambda: [0] * BUCKETS)


class RequestMeter:
    def __init__(self) -> None:
        self._window: dict[str, ProjectWindow] = {}

    def record(self, project: str, status: int, seconds: float) -> None:
        window = self._window.get(project)
        if window is None:
            if len(self._window) >= MAX_PROJECTS:
                return
            window = self._window[project] = ProjectWindow()
        window.requests += 1
        cls = status // 100
        window.classes[cls if 1 <= cls <= 5 else 0] += 1
        window.latency[bucket_of(seconds * 1000.0)] += 1

    def take(self) -> dict[str, ProjectWindow]:
        """The counts since the last take (and a fresh window for the next ones)."""
        window, self._window = self._window, {}
        return window

    def put_back(self, window: dict[str, ProjectWindow]) -> None:
        """Counts a report could not deliver, added to the current window."""
        for project, old in window.items():
            current = self._window.get(project)
            if current is None:
                if len(self._window) >= MAX_PROJECTS:
                    continue
                self._window[project] = old
                continue
            current.requests += old.requests
            current.classes = [a + b for a, b in zip(current.classes, old.classes, strict=True)]
            current.latency = [a + b for a, b in zip(current.latency, old.latency, strict=True)]


def to_report(window: dict[str, ProjectWindow]) -> pb.RequestReport:
    return pb.RequestReport(
        projects=[
            pb.ProjectRequests(
                project=project,
                requests=w.requests,
                status_1xx=w.classes[1],
                status_2xx=w.classes[2],
                status_3xx=w.classes[3],
                status_4xx=w.classes[4],
                status_5xx=w.classes[5],
                latency_buckets=w.latency,
            )
            for project, w in window.items()
        ]
    )


async def report_loop(meter: RequestMeter, settings: Settings) -> None:
    """Every REPORT_SECONDS, hand the window to the API; kept for the next try if it fails."""
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    async with grpc.aio.insecure_channel(f"{host}:{settings.api_grpc_port}") as channel:
        stub = pb_grpc.MetricsStub(channel)
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            window = meter.take()
            if not window:
                continue
            try:
                await stub.ReportRequests(
                    to_report(window), metadata=call_metadata(), timeout=REPORT_TIMEOUT_SECONDS
                )
            except grpc.aio.AioRpcError as exc:
                log.warning("request metrics not delivered (kept for the next report): %s", exc)
                meter.put_back(window)
