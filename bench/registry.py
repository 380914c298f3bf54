"""The list of benchmarks `python -m bench` runs, and the row type they report.

To add a benchmark: write a module with an async function decorated with `@register(...)`
and add the module to MODULES.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# Modules holding benchmarks, in the order they run.
MODULES = [
    "bench.graphql_projects",
    "bench.graphql_dashboard",  # issue 17
    "bench.deploy_latency",
    "bench.push_to_live",
    "bench.live_paths",  # issue 17
    "bench.build_isolation",  # issue 10
    "bench.real_apps",  # issue 14
    "bench.ingress_throughput",
    "bench.ingress_tls",
    "bench.recovery",  # issue 20
    "bench.platform_memory",  # issue 17
    "bench.swarm",  # issue 16
    "bench.swarm_push",  # issue 16: git push to live, Swarm vs one engine
    "bench.scale",  # issue 17: not in the default run (minutes); --only scale
]


@dataclass(frozen=True)
class Options:
    duration: float = 10.0  # seconds of measurement per subject
    concurrency: int = 16
    warmup: float = 2.0  # seconds of discarded load before each measurement


@dataclass
class Row:
    benchmark: str
    subject: str
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int = 0
    errors: int = 0
    # Against the baseline row of the same benchmark (None on the baseline itself).
    rps_ratio: float | None = None
    p50_ratio: float | None = None
    baseline: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class BenchmarkFailed(Exception):
    """A benchmark could not produce a meaningful measurement (wrong data, server died)."""


BenchFn = Callable[[Options], Awaitable[list[Row]]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: BenchFn
    default: bool = True  # False: runs only when --only names it (it takes minutes)


REGISTRY: dict[str, Benchmark] = {}


def register(name: str, description: str, *, default: bool = True) -> Callable[[BenchFn], BenchFn]:
    def decorate(fn: BenchFn) -> BenchFn:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = Benchmark(name=name, description=description, run=fn, default=default)
        return fn

    return decorate


def load_all() -> dict[str, Benchmark]:
    for module in MODULES:
        importlib.import_module(module)
    return REGISTRY


def select(only: list[str] | None) -> list[Benchmark]:
    """Every default benchmark, or those whose name contains one of the `only` words."""
    benchmarks = list(load_all().values())
    if not only:
        return [b for b in benchmarks if b.default]
    chosen = [b for b in benchmarks if any(word in b.name for word in only)]
    if not chosen:
        names = ", ".join(b.name for b in benchmarks)
        raise SystemExit(f"no benchmark matches {only}; known: {names}")
    return chosen


def add_ratios(rows: list[Row]) -> None:
    """Fill rps_ratio/p50_ratio of each row against the baseline row of its benchmark."""
    baselines = {r.benchmark: r for r in rows if r.baseline}
    for row in rows:
        base = baselines.get(row.benchmark)
        if base is None or row is base:
            continue
        if row.rps is not None and base.rps:
            row.rps_ratio = row.rps / base.rps
        if row.p50_ms is not None and base.p50_ms:
            row.p50_ratio = row.p50_ms / base.p50_ms
