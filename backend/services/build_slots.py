"""Fair build slots (issue 11): the platform's ``max_concurrent_builds`` slots, handed out
round-robin across Clients, so that one Client's many projects cannot starve another Client's
single push.

Rule: a free slot goes to the waiting Client that was served least recently (one never served
first; ties in arrival order); within one Client, builds go first come, first served. A Client
that has just been given a slot goes to the back of the line. With one project building at a
time (the per-project queue of services/applications/queue.py), a push of a Client with nothing
building waits for at most one slot's turn, however many builds other Clients queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator


class FairSlots:
    def __init__(self, slots: int) -> None:
        self.free = max(1, slots)
        # Client id -> its waiting builds, in arrival order.
        self._waiting: OrderedDict[int, deque[asyncio.Future[None]]] = OrderedDict()
        # Client id -> when it was last given a slot (a counter, not a clock).
        self._served: dict[int, int] = {}
        self._tick = 0

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def busy(self) -> bool:
        """True when a build asking now would have to wait."""
        return self.free == 0 or bool(self._waiting)

    @contextlib.asynccontextmanager
    async def turn(self, client_id: int) -> AsyncIterator[None]:
        await self._acquire(client_id)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, client_id: int) -> None:
        if self.free > 0 and not self._waiting:
            self.free -= 1
            self._serve(client_id)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(client_id, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the slot was ours already: hand it on
            else:
                queue = self._waiting.get(client_id)
                if queue is not None and future in queue:
                    queue.remove(future)
                    if not queue:
                        del self._waiting[client_id]
            raise

    def _serve(self, client_id: int) -> None:
        self._tick += 1
        self._served[client_id] = self._tick

    def _release(self) -> None:
        while self._waiting:
            # min() keeps the first of equals: ties go in arrival order.
            client_id = min(self._waiting, key=lambda c: self._served.get(c, 0))
            queue = self._waiting[client_id]
            future = queue.popleft()
            if not queue:
                del self._waiting[client_id]
            if not future.done():
                self._serve(client_id)
                future.set_result(None)
                return
        self.free += 1
