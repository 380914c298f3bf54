"""What the Metrics tab charts, as plain data: one row per point in time merging every process's
CPU and memory (summed over process types, like the limit) with the ingress's requests and
latency, and the release markers on that time axis. Pure functions (no Reflex here), so
tests/unit checks them without the web app's venv."""

from __future__ import annotations

import datetime as dt
from typing import Any

# The ranges the API offers (Query.metrics): 10 s points up to 6h, 5 min points beyond.
RANGES = ("15m", "1h", "6h", "24h", "7d", "30d")
DEFAULT_RANGE = "1h"
_SPANS = {
    "15m": dt.timedelta(minutes=15),
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
MB = 1024 * 1024


def parse_at(text: str) -> dt.datetime:
    """An API DateTime (ISO 8601, UTC when it names no zone)."""
    at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def label(at: dt.datetime, range_: str) -> str:
    """The time axis' label of a point: the time of day up to 24h, the day too beyond."""
    at = at.astimezone(dt.UTC)
    if range_ in ("7d", "30d"):
        return at.strftime("%m-%d %H:%M")
    return at.strftime("%H:%M:%S") if range_ in ("15m", "1h", "6h") else at.strftime("%H:%M")


def _bucket(at: dt.datetime, resolution: int) -> int:
    seconds = int(at.timestamp())
    return seconds - seconds % max(resolution, 1)


def _empty_row(ts: int, range_: str) -> dict[str, Any]:
    return {
        "ts": ts,
        "t": label(dt.datetime.fromtimestamp(ts, dt.UTC), range_),
        "memory_mb": None,
        "limit_mb": None,
        "cpu": None,
        "replicas": None,
        "restarts": None,
        "req_2xx": None,
        "req_3xx": None,
        "req_4xx": None,
        "req_5xx": None,
        "req_other": None,
        "per_second": None,
        "p50": None,
        "p95": None,
        "p99": None,
    }


def _add(row: dict[str, Any], key: str, value: float) -> None:
    row[key] = (row[key] or 0) + value


def merge(
    rows: list[dict[str, Any]],
    processes: list[dict[str, Any]],
    requests: list[dict[str, Any]],
    range_: str,
    resolution: int,
) -> list[dict[str, Any]]:
    """`rows` with the API's process series and request points merged in, oldest first. A point
    of an interval the rows already have replaces that interval's values (a live update repeats
    the interval it completes)."""
    by_ts = {r["ts"]: dict(r) for r in rows}
    fresh: dict[int, dict[str, Any]] = {}

    def row_at(at_text: str) -> dict[str, Any]:
        ts = _bucket(parse_at(at_text), resolution)
        if ts not in fresh:
            fresh[ts] = _empty_row(ts, range_)
        return fresh[ts]

    for series in processes:
        for p in series["points"]:
            row = row_at(p["at"])
            _add(row, "memory_mb", round(p["memoryBytes"] / MB, 1))
            _add(row, "limit_mb", round(p["memoryLimitBytes"] / MB, 1))
            _add(row, "cpu", round(p["cpuCores"], 3))
            _add(row, "replicas", p["replicas"])
            _add(row, "restarts", p["restarts"])
    for q in requests:
        row = row_at(q["at"])
        _add(row, "req_2xx", q["status2xx"])
        _add(row, "req_3xx", q["status3xx"])
        _add(row, "req_4xx", q["status4xx"])
        _add(row, "req_5xx", q["status5xx"])
        _add(row, "req_other", q["status1xx"])
        _add(row, "per_second", round(q["perSecond"], 2))
        for key, api_key in (("p50", "p50Ms"), ("p95", "p95Ms"), ("p99", "p99Ms")):
            if q.get(api_key) is not None:
                row[key] = q[api_key]
    for ts, row in fresh.items():
        old = by_ts.get(ts)
        if old is None:
            by_ts[ts] = row
        else:  # only the values this answer has replace the interval's
            old.update({k: v for k, v in row.items() if v is not None})
    return [by_ts[ts] for ts in sorted(by_ts)]


def rows_from(answer: dict[str, Any], range_: str) -> list[dict[str, Any]]:
    """The chart rows of a `metrics(project, range)` answer."""
    return merge([], answer["processes"], answer["requests"], range_, answer["resolutionSeconds"])


COUNTS = ("req_2xx", "req_3xx", "req_4xx", "req_5xx", "req_other")


def apply_update(
    rows: list[dict[str, Any]],
    update: dict[str, Any],
    range_: str,
    resolution: int,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """`rows` with one `metricsLive` update merged in and the points older than the range
    dropped. On a 5-minute range several live 10 s points fall into one interval: their request
    counts add up, the gauges (memory, CPU, latency) are the latest."""
    requests = [update["requests"]] if update.get("requests") else []
    by_ts = {r["ts"]: r for r in rows}
    for row in merge([], update["processes"], requests, range_, resolution):
        old = by_ts.get(row["ts"])
        if old is None:
            by_ts[row["ts"]] = row
            continue
        if resolution > 10:
            for key in COUNTS:
                if row[key] is not None:
                    row[key] += old[key] or 0
        by_ts[row["ts"]] = {**old, **{k: v for k, v in row.items() if v is not None}}
    cutoff = (now or dt.datetime.now(dt.UTC)) - _SPANS.get(range_, _SPANS[DEFAULT_RANGE])
    return [by_ts[ts] for ts in sorted(by_ts) if ts >= cutoff.timestamp() - resolution]


def markers(rows: list[dict[str, Any]], releases: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Release markers on the time axis: each release made inside the charted window, at the
    first point at or after its creation (a category axis names only its points). Not its
    finishedAt: that moves when the release is superseded."""
    out: list[dict[str, str]] = []
    if not rows:
        return out
    for a in sorted(releases, key=lambda a: a["number"]):
        when = a.get("createdAt")
        if not when or a.get("status") in ("FAILED", "QUEUED", "BUILDING"):
            continue
        ts = parse_at(when).timestamp()
        if ts < rows[0]["ts"] - 1 or ts > rows[-1]["ts"] + 60:
            continue
        at = next((r for r in rows if r["ts"] >= ts - 1), rows[-1])
        out.append({"t": at["t"], "label": f"v{a['number']}"})
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The latest values, as text beside the charts (readable without hovering)."""

    def last(key: str) -> Any:
        return next((r[key] for r in reversed(rows) if r[key] is not None), None)

    memory, limit, cpu = last("memory_mb"), last("limit_mb"), last("cpu")
    p95 = last("p95")
    total = sum(
        (r[k] or 0) for r in rows for k in ("req_2xx", "req_3xx", "req_4xx", "req_5xx", "req_other")
    )
    return {
        "memory": f"{memory:.0f} of {limit:.0f} MB" if memory is not None and limit else "no data",
        "cpu": f"{cpu:.2f} cores" if cpu is not None else "no data",
        "requests": f"{int(total)} in range",
        "latency": f"p95 ≤ {p95:g} ms" if p95 is not None else "no requests",
    }
