"""`python -m bench [--only NAME[,NAME]] [--duration S] [--concurrency N]`: run the benchmarks,
print one table, write bench/results/latest.json. Measurements only: nothing here fails on a
timing; the exit status is 1 only when a benchmark could not measure (wrong data, crash)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.registry import Options, Row, add_ratios, load_all, select

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run the benchmarks whose name contains NAME (repeatable, or comma-separated)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    args.only = [word.strip() for item in args.only for word in item.split(",") if word.strip()]
    if args.duration <= 0 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--duration must be > 0, --concurrency >= 1, --warmup >= 0")
    return args


async def run_all(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    opts = Options(duration=args.duration, concurrency=args.concurrency, warmup=args.warmup)
    rows: list[Row] = []
    failures: list[str] = []
    for bench in select(args.only):
        print(f"running {bench.name}: {bench.description}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            rows.extend(await bench.run(opts))
        except Exception as exc:
            traceback.print_exc()
            failures.append(bench.name)
            rows.append(Row(benchmark=bench.name, subject="-", notes=[_failure_note(exc)]))
        took = time.monotonic() - started
        print(f"  {bench.name} done in {took:.0f} s", file=sys.stderr, flush=True)
    add_ratios(rows)
    return rows, failures


def _failure_note(exc: Exception) -> str:
    # The traceback went to stderr; the table gets the gist (a log tail ends with the cause).
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if len(lines) <= 1 else f"{lines[0]} ... {lines[-1]}"
    return f"FAILED: {type(exc).__name__}: {text[:300]}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(row: Row) -> str:
    if row.baseline:
        return "1.00 (baseline)"
    if row.rps_ratio is None:
        # Latency-only rows (deploys): the ratio of medians.
        return f"p50 x{row.p50_ratio:.2f}" if row.p50_ratio is not None else "-"
    text = f"rps x{row.rps_ratio:.2f}"
    if row.p50_ratio is not None:
        text += f", p50 x{row.p50_ratio:.2f}"
    return text


COLUMNS = ["benchmark", "subject", "requests/s", "p50 ms", "p99 ms", "ratio vs baseline", "notes"]


def table_cells(row: Row) -> list[str]:
    return [
        row.benchmark,
        row.subject,
        _num(row.rps),
        _num(row.p50_ms),
        _num(row.p99_ms),
        _ratio(row),
        "; ".join(row.notes),
    ]


def print_table(rows: list[Row]) -> None:
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _print_plain(rows)
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=200, no_color=True)
    table = Table(box=box.SIMPLE_HEAVY if console.is_terminal else box.ASCII, show_lines=False)
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="right" if 2 <= i <= 4 else "left")
    for row in rows:
        table.add_row(*table_cells(row))
    console.print(table)


def _print_plain(rows: list[Row]) -> None:
    cells = [COLUMNS, *(table_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=RESULTS.parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_results(rows: list[Row], args: argparse.Namespace) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "latest.json"
    payload = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_revision": _git_revision(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "options": {
            "duration": args.duration,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "only": args.only,
        },
        "rows": [row.to_json() for row in rows],
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for bench in select(args.only) if args.only else load_all().values():
            later = "" if bench.default else " [not in the default run: use --only]"
            print(f"{bench.name}: {bench.description}{later}")
        return 0
    # The platform image registry every build of the measured platforms pushes to (issue 10).
    from tests.support.registry import ensure_registry

    ensure_registry()
    rows, failures = asyncio.run(run_all(args))
    print_table(rows)
    path = write_results(rows, args)
    print(f"results: {path}", file=sys.stderr)
    if failures:
        print(f"FAILED (could not measure): {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
