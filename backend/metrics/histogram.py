"""The latency histogram shared by the ingress (counting) and the API (storing, percentiles).

Fixed bucket bounds: counting a request is a bisect and an increment, and histograms of any two
windows add up bucket by bucket, so downsampled rows keep exact bucket counts."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# Upper bounds in milliseconds; one more bucket (the last) holds everything slower.
BOUNDS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
)  # fmt: skip
BUCKETS = len(BOUNDS_MS) + 1


def bucket_of(milliseconds: float) -> int:
    return bisect_left(BOUNDS_MS, milliseconds)


def merge(into: list[int], other: Sequence[int]) -> None:
    for i, count in enumerate(other[:BUCKETS]):
        into[i] += int(count)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) in ms: the upper bound of the bucket it falls in (the
    overflow bucket answers its lower bound). None without requests."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        seen += count
        if seen >= rank and count:
            return float(BOUNDS_MS[i] if i < len(BOUNDS_MS) else BOUNDS_MS[-1])
    return float(BOUNDS_MS[-1])
