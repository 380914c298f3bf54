"""The pure rules of the web app's Metrics tab and activity feeds (issue 18): the API's series
merged into one row per interval (processes summed, requests by status class, latency), live
points merged in and old ones dropped, release markers on points of the axis, and activity
records shown once each, newest first, sources named for people."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "frontend"))
from paastech_web import activity_model, metrics_model  # noqa: E402

MB = 1024 * 1024
T0 = dt.datetime(2026, 12, 3, 14, 0, 0, tzinfo=dt.UTC)


def at(seconds: int) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


def proc(seconds: int, mb: int, cpu: float = 0.5, limit: int = 256) -> dict:
    return {
        "at": at(seconds),
        "replicas": 1,
        "cpuCores": cpu,
        "memoryBytes": mb * MB,
        "memoryLimitBytes": limit * MB,
        "restarts": 0,
    }


def req(seconds: int, ok: int, bad: int = 0, p95: float | None = 25.0) -> dict:
    return {
        "at": at(seconds),
        "perSecond": (ok + bad) / 10,
        "status1xx": 0,
        "status2xx": ok,
        "status3xx": 0,
        "status4xx": 0,
        "status5xx": bad,
        "p50Ms": 5.0 if p95 is not None else None,
        "p95Ms": p95,
        "p99Ms": p95,
    }


ANSWER = {
    "resolutionSeconds": 10,
    "processes": [
        {"process": "web", "points": [proc(0, 40), proc(10, 50)]},
        {"process": "worker", "points": [proc(10, 30, cpu=0.25, limit=128)]},
    ],
    "requests": [req(10, 7, 1), req(20, 3, p95=None)],
}


def test_rows_merge_processes_and_requests_per_interval() -> None:
    rows = metrics_model.rows_from(ANSWER, "1h")
    assert [r["t"] for r in rows] == ["14:00:00", "14:00:10", "14:00:20"]
    first, second, third = rows
    assert (first["memory_mb"], first["limit_mb"], first["req_2xx"]) == (40, 256, None)
    # Both process types at 14:00:10, summed like their limits.
    assert (second["memory_mb"], second["limit_mb"], second["cpu"]) == (80, 384, 0.75)
    assert (second["req_2xx"], second["req_5xx"], second["p95"]) == (7, 1, 25.0)
    # No latency when nothing was measured: a gap, not a zero.
    assert third["memory_mb"] is None and third["req_2xx"] == 3 and third["p95"] is None


def test_long_ranges_label_the_day() -> None:
    answer = {**ANSWER, "resolutionSeconds": 300}
    rows = metrics_model.rows_from(answer, "30d")
    assert rows[0]["t"] == "12-03 14:00"
    assert len(rows) == 1  # every point falls into the first 5-minute interval
    assert rows[0]["req_2xx"] == 10


def test_live_update_appends_replaces_and_drops_old_points() -> None:
    rows = metrics_model.rows_from(ANSWER, "15m")
    update = {"processes": [{"process": "web", "points": [proc(30, 60)]}], "requests": req(30, 4)}
    after = metrics_model.apply_update(rows, update, "15m", 10, now=T0 + dt.timedelta(seconds=30))
    assert after[-1]["t"] == "14:00:30" and after[-1]["memory_mb"] == 60
    assert after[-1]["req_2xx"] == 4
    # The same interval again (a repeated point) replaces it: no double count at 10 s.
    again = metrics_model.apply_update(after, update, "15m", 10, now=T0)
    assert len(again) == len(after) and again[-1]["req_2xx"] == 4
    # 16 minutes on, a 15m range keeps only the new point.
    later = {"processes": [{"process": "web", "points": [proc(990, 70)]}], "requests": None}
    kept = metrics_model.apply_update(again, later, "15m", 10, now=T0 + dt.timedelta(seconds=990))
    assert [r["memory_mb"] for r in kept] == [70]


def test_live_points_add_up_inside_a_5_minute_interval() -> None:
    rows = metrics_model.rows_from({**ANSWER, "resolutionSeconds": 300}, "24h")
    update = {"processes": [{"process": "web", "points": [proc(40, 90)]}], "requests": req(40, 5)}
    after = metrics_model.apply_update(rows, update, "24h", 300, now=T0)
    assert len(after) == 1
    assert after[0]["req_2xx"] == 15  # 10 so far + 5 live
    assert after[0]["memory_mb"] == 90  # a gauge: the latest


def test_release_markers_sit_on_points_inside_the_window() -> None:
    rows = metrics_model.rows_from(ANSWER, "1h")
    releases = [
        {"number": 1, "status": "SUPERSEDED", "createdAt": at(-900), "finishedAt": at(-890)},
        {"number": 2, "status": "RUNNING", "createdAt": at(12), "finishedAt": at(99)},
        {"number": 3, "status": "FAILED", "createdAt": at(14), "finishedAt": at(15)},
    ]
    assert metrics_model.markers(rows, releases) == [{"t": "14:00:20", "label": "v2"}]
    assert metrics_model.markers([], releases) == []


def test_summary_reads_the_latest_values() -> None:
    rows = metrics_model.rows_from(ANSWER, "1h")
    text = metrics_model.summary(rows)
    assert text["memory"] == "80 of 384 MB"
    assert text["requests"] == "11 in range"
    assert text["latency"] == "p95 ≤ 25 ms"
    assert metrics_model.summary([])["memory"] == "no data"


def record(i: int, source: str = "git", token: str = "ci") -> dict:
    return {
        "id": str(i),
        "at": at(i) + "",
        "action": "deploy",
        "project": "shop",
        "source": source,
        "tokenName": token,
        "summary": f"deployed v{i}",
    }


def test_activity_rows_name_the_source_and_token() -> None:
    row = activity_model.activity_row(record(3, "cli", "laptop"))
    assert (row.id, row.source_label, row.token, row.summary) == (3, "CLI", "laptop", "deployed v3")
    assert row.when == "2026-12-03 14:00:03 UTC"
    # An unknown source (never expected) reads as the API, not as something made up.
    assert activity_model.activity_row(record(4, "???")).source_label == "API"


def test_live_records_are_added_once_newest_first_and_bounded() -> None:
    rows = [activity_model.activity_row(record(i)) for i in (5, 4)]
    # The subscription starts with the newest record so far: already shown, not repeated.
    rows = activity_model.with_new(rows, [record(5), record(6), record(6)])
    assert [r.id for r in rows] == [6, 5, 4]
    many = [record(i) for i in range(10, 10 + activity_model.MAX_ROWS + 5)]
    bounded = activity_model.with_new(rows, many)
    assert len(bounded) == activity_model.MAX_ROWS
    assert bounded[0].id == 10 + activity_model.MAX_ROWS + 4
