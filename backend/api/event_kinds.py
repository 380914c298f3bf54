"""The event kinds clients see on projectEvents, mapped from the internal hub kinds
(backend/events.py) in this one place.

The hub also carries plumbing no client acts on (build and runtime log lines, revoked tokens,
metrics points, activity ids, add-on status, each on its own topic and served by its own
subscription): those kinds stay internal, so the hub can change them without changing the API.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from backend.events import EventKind


@strawberry.enum(
    name="ProjectEventKind",
    description="What changed in a project (projectEvents). SUBSCRIBED comes first: from "
    "there on no change is missed.",
)
class ProjectEventKind(Enum):
    SUBSCRIBED = "SUBSCRIBED"
    ENV_CHANGED = "ENV_CHANGED"
    DOMAINS_CHANGED = "DOMAINS_CHANGED"
    SETTINGS_CHANGED = "SETTINGS_CHANGED"
    APPLICATION_CREATED = "APPLICATION_CREATED"
    APPLICATION_STATUS = "APPLICATION_STATUS"
    PROJECT_DELETED = "PROJECT_DELETED"


PUBLIC: dict[EventKind, ProjectEventKind] = {
    EventKind.SUBSCRIBED: ProjectEventKind.SUBSCRIBED,
    EventKind.ENV_CHANGED: ProjectEventKind.ENV_CHANGED,
    EventKind.DOMAINS_CHANGED: ProjectEventKind.DOMAINS_CHANGED,
    EventKind.SETTINGS_CHANGED: ProjectEventKind.SETTINGS_CHANGED,
    EventKind.APPLICATION_CREATED: ProjectEventKind.APPLICATION_CREATED,
    EventKind.APPLICATION_STATUS: ProjectEventKind.APPLICATION_STATUS,
    EventKind.PROJECT_DELETED: ProjectEventKind.PROJECT_DELETED,
}


# Kinds clients never see: each has its own topic and subscription (or none).
INTERNAL: frozenset[EventKind] = frozenset(
    {
        EventKind.BUILD_LOG,
        EventKind.RUNTIME_LOG,
        EventKind.TOKEN_REVOKED,
        EventKind.METRICS,
        EventKind.ACTIVITY,
        EventKind.ADDON_STATUS,
    }
)


def public_kind(kind: EventKind) -> ProjectEventKind | None:
    """The kind a client sees, or None for an internal event (not sent to clients)."""
    return PUBLIC.get(kind)
