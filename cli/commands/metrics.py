"""Metrics (issue 18): CPU, memory, network and restarts per process; requests and latency."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from cli import output
from cli.app import JsonOpt, ProjectOpt, app, authed, run
from cli.gitremote import resolve_project

PANEL = "Logs"
RANGES = ("15m", "1h", "6h", "24h", "7d", "30d")  # backend/metrics/store.py RANGES
SPARKS = "▁▂▃▄▅▆▇█"
WIDTH = 40  # characters per sparkline


def sparkline(values: Sequence[float | None], width: int = WIDTH, top: float | None = None) -> str:
    """The last `width` values as block characters scaled to `top` (default: their maximum);
    a missing value is a space."""
    shown = list(values)[-width:]
    known = [v for v in shown if v is not None]
    high = top if top else max(known, default=0.0)
    if high <= 0:
        return "".join(" " if v is None else SPARKS[0] for v in shown)
    last = len(SPARKS) - 1
    return "".join(
        " " if v is None else SPARKS[max(0, min(last, round(v / high * last)))] for v in shown
    )


def _size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"≤{value:g} ms"


def _process_rows(series: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    points = series["points"]
    last = points[-1]
    limit = last["memoryLimitBytes"] or None
    name = series["process"]
    return [
        (
            f"{name} cpu",
            sparkline([p["cpuCores"] for p in points]),
            f"{last['cpuCores']:.2f} cores",
            f"peak {max(p['cpuCores'] for p in points):.2f}",
        ),
        (
            f"{name} memory",
            sparkline([p["memoryBytes"] for p in points], top=limit),
            _size(last["memoryBytes"]) + (f" / {_size(limit)}" if limit else ""),
            f"peak {_size(max(p['memoryBytes'] for p in points))}",
        ),
        (
            f"{name} network",
            sparkline([p["netRxBytesPerSecond"] + p["netTxBytesPerSecond"] for p in points]),
            f"in {_size(last['netRxBytesPerSecond'])}/s out {_size(last['netTxBytesPerSecond'])}/s",
            f"{last['replicas']} replica(s), {last['restarts']} restart(s)",
        ),
    ]


def _request_rows(points: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    total = sum(p["requests"] for p in points)
    errors = sum(p["status5xx"] for p in points)
    last = points[-1]
    return [
        (
            "requests",
            sparkline([p["perSecond"] for p in points]),
            f"{last['perSecond']:.1f}/s",
            f"{total} total, {errors} 5xx",
        ),
        (
            "latency p95",
            sparkline([p["p95Ms"] for p in points]),
            _ms(last["p95Ms"]),
            f"p50 {_ms(last['p50Ms'])}, p99 {_ms(last['p99Ms'])}",
        ),
    ]


@app.command("metrics", rich_help_panel=PANEL)
def metrics(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="PROJECT", help="The project; default: -p, or the git remote's project."
        ),
    ] = None,
    project: ProjectOpt = None,
    range_: Annotated[
        str,
        typer.Option("--range", "-r", help=f"How far back: {', '.join(RANGES)}."),
    ] = "1h",
    as_json: JsonOpt = False,
) -> None:
    """Show CPU, memory, network and restarts per process, and requests and latency, as
    sparklines (newest on the right)."""
    if range_ not in RANGES:
        raise typer.BadParameter(f"use one of {', '.join(RANGES)}", param_hint="'--range'")
    target = resolve_project(name or project)
    data = run(authed().execute("Metrics", project=target, range=range_))["metrics"]
    if as_json:
        output.print_json(data)
        return
    rows: list[tuple[str, str, str, str]] = []
    for series in data["processes"]:
        if series["points"]:
            rows.extend(_process_rows(series))
    if data["requests"]:
        rows.extend(_request_rows(data["requests"]))
    if not rows:
        output.note(
            f"no metrics for {target} in the last {range_} (a point every 10 s while it runs)"
        )
        return
    step = data["resolutionSeconds"]
    output.table(
        ["METRIC", f"LAST {range_} (one mark per {step} s)", "NOW", ""],
        rows,
        title=f"{data['project']} metrics",
    )
