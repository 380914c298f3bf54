"""Longest modules first: `make test` hands whole modules to 4 xdist workers (--dist loadfile),
and xdist's default order (most tests first) started the two fuzzing modules, which have few
tests but run minutes, last, so one worker ran alone at the end. Sorting modules by their
measured time (tests/module_durations.json) before xdist schedules them (with
--no-loadscope-reorder) is longest-processing-time-first scheduling.

Each run records its own per-module times to $PAASTECH_TEST_DURATIONS_OUT (the Makefile writes
build/module_durations.json); copy that over tests/module_durations.json to refresh the order.
A module missing from the file (a new one) goes after the measured ones."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).resolve().parent.parent / "module_durations.json"


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def known_durations(path: Path = DURATIONS) -> dict[str, float]:
    try:
        measured = json.loads(path.read_text())
        return {str(k): float(v) for k, v in measured.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def longest_first(items: list[pytest.Item], durations: dict[str, float]) -> list[pytest.Item]:
    """Items grouped by module, modules by measured time (longest first); within a module,
    and among unmeasured modules, the collection order is kept (sorted() is stable)."""
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(module_of(item.nodeid), len(first_seen))

    def key(item: pytest.Item) -> tuple[float, int]:
        module = module_of(item.nodeid)
        return (-durations.get(module, -1.0), first_seen[module])

    return sorted(items, key=key)


class DurationRecorder:
    """Sums each module's setup, call and teardown time as reports reach the controller."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.totals: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.totals[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self) -> None:
        if not self.totals:
            return
        ordered = dict(sorted(self.totals.items(), key=lambda kv: -kv[1]))
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps({k: round(v, 1) for k, v in ordered.items()}, indent=1))


def configure(config: pytest.Config) -> None:
    out = os.environ.get("PAASTECH_TEST_DURATIONS_OUT")
    # Only the controller records (xdist workers have a workerinput attribute).
    if out and not hasattr(config, "workerinput"):
        config.pluginmanager.register(DurationRecorder(Path(out)), "paastech-durations")
