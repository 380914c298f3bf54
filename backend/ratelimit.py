"""Sliding-window counters: failed logins (password guessing) and sign-ups per address."""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Callable


class FailureLimiter:
    """Counts failures per key in a time window; in-process (one API worker).

    A restart forgets the counters, which only ever makes the limit more lenient.
    """

    def __init__(self, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
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

    def delay(self, key: str, free: int, base: float, cap: float) -> int:
        """Seconds to wait before the next attempt: none for the first ``free`` failures, then
        ``base`` after the last failure, doubling with each further one up to ``cap``.

        A growing delay rather than a lockout: a guesser is slowed to a crawl, while the owner
        typing the right password after a pause still gets in."""
        q = self._prune(key)
        if len(q) < free:
            return 0
        wait = min(cap, base * 2 ** (len(q) - free))
        remaining = q[-1] + wait - self._clock()
        return math.ceil(remaining) if remaining > 0 else 0

    def count(self, key: str) -> int:
        return len(self._prune(key))

    def fail(self, key: str) -> None:
        self._prune(key)
        self._failures[key].append(self._clock())

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)
