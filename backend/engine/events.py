"""Container events from the engine's ``/events`` stream, parsed once for every consumer."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiodocker

from backend.engine.engine import engine_get


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One container event: ``kind`` is the action (start, die, kill, health_status, ...),
    ``detail`` what follows its colon (``healthy`` for ``health_status: healthy``)."""

    kind: str
    container_id: str
    attributes: dict[str, str] = field(default_factory=dict)  # the container's labels, name, ...
    detail: str | None = None
    exit_code: int | None = None
    time: datetime | None = None


def parse_event(data: dict[str, Any]) -> EngineEvent | None:
    """The event of one decoded stream line; None for one without an action or a container."""
    action = str(data.get("Action") or data.get("status") or "")
    kind, _, detail = action.partition(":")
    actor = data.get("Actor") or {}
    container_id = str(actor.get("ID") or data.get("id") or "")
    if not kind.strip() or not container_id:
        return None
    attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
    exit_code = attributes.get("exitCode")
    when = data.get("timeNano") or data.get("time")
    time = None
    if isinstance(when, int):
        time = datetime.fromtimestamp(when / 1e9 if when > 1e12 else when, UTC)
    return EngineEvent(
        kind=kind.strip(),
        container_id=container_id,
        attributes=attributes,
        detail=detail.strip() or None,
        exit_code=int(exit_code) if exit_code not in (None, "") and exit_code.isdigit() else None,
        time=time,
    )


@asynccontextmanager
async def container_events(
    docker: aiodocker.Docker, label_filters: Sequence[str], actions: Sequence[str]
) -> AsyncIterator[AsyncIterator[EngineEvent]]:
    """Open a stream of the events of containers carrying ``label_filters`` (``key=value``),
    limited to ``actions``. The engine has accepted the stream when the block starts (events from
    then on queue in it); iterate the value to read them, until the engine ends the stream.
    Each call opens a stream of its own: consumers never share or stop each other's."""
    filters = {"type": ["container"], "label": list(label_filters), "event": list(actions)}
    async with engine_get(docker, "events", {"filters": filters}, streaming=True) as response:

        async def read() -> AsyncGenerator[EngineEvent]:
            while raw := await response.content.readline():
                try:
                    data = json.loads(raw)
                except ValueError:
                    continue
                event = parse_event(data) if isinstance(data, dict) else None
                if event is not None:
                    yield event

        stream = read()
        try:
            yield stream
        finally:
            await stream.aclose()
