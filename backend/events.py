"""The event bus behind GraphQL subscriptions, and the one list of event kinds.

The bus is a small interface: the in-process implementation serves a single API process; a
PostgreSQL LISTEN/NOTIFY or Redis implementation can replace it without touching publishers or
subscribers, because events are plain JSON-able payloads addressed to string topics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol


class EventKind(StrEnum):
    # First event of every project subscription: from here on nothing is missed.
    SUBSCRIBED = "SUBSCRIBED"
    ENV_CHANGED = "ENV_CHANGED"
    DOMAINS_CHANGED = "DOMAINS_CHANGED"
    APPLICATION_CREATED = "APPLICATION_CREATED"
    APPLICATION_STATUS = "APPLICATION_STATUS"
    SETTINGS_CHANGED = "SETTINGS_CHANGED"
    PROJECT_DELETED = "PROJECT_DELETED"
    BUILD_LOG = "BUILD_LOG"
    RUNTIME_LOG = "RUNTIME_LOG"
    # An API token was revoked (logout, revokeApiToken): its open websockets close.
    TOKEN_REVOKED = "TOKEN_REVOKED"
    # Issue 18: a project's new metrics point (backend/metrics/collector.py), on metrics_topic.
    METRICS = "METRICS"
    # A record was added to a Client's activity feed (issue 18).
    ACTIVITY = "ACTIVITY"
    # An add-on's status changed (issue 15); "removed" is its last.
    ADDON_STATUS = "ADDON_STATUS"


def project_topic(project_id: int) -> str:
    return f"project:{project_id}"


def metrics_topic(project_id: int) -> str:
    return f"metrics:{project_id}"


def token_topic(token_id: int) -> str:
    return f"token:{token_id}"


def activity_topic(client_id: int) -> str:
    return f"activity:{client_id}"


def addon_topic(addon_id: int) -> str:
    return f"addon:{addon_id}"


def build_log_topic(application_id: int) -> str:
    return f"build-log:{application_id}"


@dataclass(frozen=True)
class Event:
    topic: str
    kind: EventKind
    payload: dict[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class EventBus(Protocol):
    async def publish(self, topic: str, kind: EventKind, payload: dict[str, Any]) -> None: ...

    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Register now (events published after this returns are delivered), iterate later."""
        ...


class InProcessEventBus:
    """Fan-out to asyncio queues. A slow subscriber loses its oldest events, never blocks."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = {}

    async def publish(self, topic: str, kind: EventKind, payload: dict[str, Any]) -> None:
        event = Event(topic=topic, kind=kind, payload=payload)
        for queue in list(self._subscribers.get(topic, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers.setdefault(topic, set()).add(queue)
        try:
            yield _drain(queue)
        finally:
            subscribers = self._subscribers.get(topic)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[topic]

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))


async def _drain(queue: asyncio.Queue[Event]) -> AsyncIterator[Event]:
    while True:
        yield await queue.get()


_bus: EventBus = InProcessEventBus()


def get_bus() -> EventBus:
    return _bus
