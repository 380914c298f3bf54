"""A small async HTTP load generator: keep-alive connections, fixed concurrency, a warm-up
phase, then a fixed-duration measuring phase. Reports throughput and latency percentiles.

Any non-2xx answer, transport exception, or failure of the optional `check` counts as an error;
errors are counted (with a few samples) rather than raised, so the caller can report them.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# Returns None when the response is good, else a short reason.
Check = Callable[[httpx.Response], str | None]


@dataclass
class LoadResult:
    requests: int  # completed in the measuring phase, errors included
    errors: int
    elapsed: float  # seconds, measuring phase
    latencies_ms: list[float] = field(repr=False)  # successful requests only
    error_kinds: Counter[str] = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        """Successful requests per second."""
        ok = self.requests - self.errors
        return ok / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile of the successful latencies, in ms."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1]

    @property
    def p50_ms(self) -> float | None:
        return self.percentile(50)

    @property
    def p99_ms(self) -> float | None:
        return self.percentile(99)

    def error_note(self) -> str | None:
        if not self.errors:
            return None
        kinds = ", ".join(f"{kind} x{n}" for kind, n in self.error_kinds.most_common(3))
        return f"{self.errors}/{self.requests} errors ({kinds})"


async def run_load(
    url: str,
    *,
    method: str = "GET",
    json: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    concurrency: int = 16,
    duration: float = 10.0,
    warmup: float = 2.0,
    request_timeout: float = 30.0,
    check: Check | None = None,
    verify: ssl.SSLContext | bool = True,
    extensions: dict[str, Any] | None = None,
) -> LoadResult:
    """Keep `concurrency` requests in flight against `url`: `warmup` s discarded, then
    `duration` s measured. Each worker finishes its in-flight request after the deadline.
    `verify` and `extensions` (e.g. httpx's ``sni_hostname``) serve HTTPS through 127.0.0.1."""
    if json is not None:
        import json as jsonlib

        content = jsonlib.dumps(json).encode()
        headers = {"content-type": "application/json", **(headers or {})}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        limits=limits, timeout=request_timeout, headers=headers, verify=verify
    ) as client:

        async def one() -> tuple[float, str | None]:
            start = time.perf_counter()
            try:
                request = client.build_request(method, url, content=content)
                request.extensions.update(extensions or {})
                response = await client.send(request)
                await response.aread()
            except httpx.HTTPError as exc:
                return time.perf_counter() - start, type(exc).__name__
            elapsed = time.perf_counter() - start
            if not 200 <= response.status_code < 300:
                return elapsed, f"HTTP {response.status_code}"
            if check is not None:
                return elapsed, check(response)
            return elapsed, None

        async def phase(seconds: float, result: LoadResult | None) -> None:
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    elapsed, error = await one()
                    if result is None:
                        continue
                    result.requests += 1
                    if error is None:
                        result.latencies_ms.append(elapsed * 1000)
                    else:
                        result.errors += 1
                        result.error_kinds[error] += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        if warmup > 0:
            await phase(warmup, None)
        result = LoadResult(requests=0, errors=0, elapsed=0.0, latencies_ms=[])
        started = time.perf_counter()
        await phase(duration, result)
        result.elapsed = time.perf_counter() - started
        return result
