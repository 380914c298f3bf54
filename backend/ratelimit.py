"""Sliding-window failure counters, used to slow down password guessing."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class FailureLimiter:
    """Counts failures per key in a time window; in-process (one API worker).

    A restart forgets the counters, which only ever makes the limit more lenient.
    """

    def __init__(self, window_seconds: float, clock=time.monotonic) -> None:
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _prune(self, key: str) -> deque[float]:
        now = self._clock()
        q = self._failures[key]
        while q and now - q[0] > self.window:
            q.popleft()
        if not q:
            self._failures.pop(key, None)
        return q

    def retry_after(self, key: str, limit: int) -> int:
        """Seconds until one more attempt is allowed; 0 when allowed now."""
        q = self._prune(key)
        if len(q) < limit:
            return 0
        return max(1, int(q[0] + self.window - self._clock()) + 1)

    def fail(self, key: str) -> None:
        self._prune(key)
        self._failures[key].append(self._clock())

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)
