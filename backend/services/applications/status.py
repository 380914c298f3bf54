"""The Application (release) status machine: the status groups and the allowed transitions.

The one definition: the services import these groups, and the CLI and the web app read them
through GraphQL (``finished``, ``live`` and ``failed`` of Application and
ApplicationStatusEvent). ``set_status`` is the only way
a status changes after creation and refuses a transition the table does not allow
(docs/architecture.md, 2.4.5).
"""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from backend.alerts import triggers as alerts
from backend.db.models import Application, ApplicationStatus, StatusChange
from backend.events import EventKind, get_bus, project_topic

S = ApplicationStatus

# Every Application is created QUEUED (Deployer._new_application).
INITIAL = S.QUEUED
# Still on its way: queued, building or deploying.
IN_PROGRESS: tuple[S, ...] = (S.QUEUED, S.BUILDING, S.DEPLOYING)
# Done: it will not build or deploy again (a live one may still crash, stop or be replaced).
FINISHED: tuple[S, ...] = (S.RUNNING, S.SUPERSEDED, S.FAILED, S.CRASHED, S.STOPPED)
# What the project serves now (a crashed release is still the live one: Docker restarts it).
LIVE: tuple[S, ...] = (S.RUNNING, S.CRASHED)
# Went wrong: it never ran, or it crashed.
FAILED: tuple[S, ...] = (S.FAILED, S.CRASHED)
# Ran once: its image may be reused (rollback, config change, start).
RELEASED: tuple[S, ...] = (S.RUNNING, S.SUPERSEDED, S.CRASHED, S.STOPPED)

# From -> the statuses it may change to. Anything else is a bug in the caller.
TRANSITIONS: dict[S, frozenset[S]] = {
    # BUILDING for a source; DEPLOYING straight away when an image is reused; FAILED when
    # replaced by a newer release before it started, or when it cannot start.
    S.QUEUED: frozenset({S.BUILDING, S.DEPLOYING, S.FAILED}),
    # QUEUED again: resumed after an API restart.
    S.BUILDING: frozenset({S.DEPLOYING, S.FAILED, S.QUEUED}),
    S.DEPLOYING: frozenset({S.RUNNING, S.FAILED, S.QUEUED}),
    S.RUNNING: frozenset({S.CRASHED, S.STOPPED, S.SUPERSEDED}),
    # RUNNING again: Docker restarted the crashed process.
    S.CRASHED: frozenset({S.RUNNING, S.STOPPED, S.SUPERSEDED}),
    # Started again as a new release, which replaces it.
    S.STOPPED: frozenset({S.SUPERSEDED}),
    S.SUPERSEDED: frozenset(),
    S.FAILED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A status change the table refuses: a bug in the platform, reported as INTERNAL."""

    def __init__(self, number: int, old: S, new: S) -> None:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[old])) or "nothing"
        super().__init__(
            f"release v{number} cannot go from {old.value} to {new.value} "
            f"(from {old.value} it may go to: {allowed})"
        )
        self.old, self.new = old, new


def can_change(old: S, new: S) -> bool:
    return new in TRANSITIONS[old]


def is_finished(status: S | str) -> bool:
    return S(status) in FINISHED


async def set_status(
    app: Application, status: S, reason: str | None = None, *, oom_killed: bool = False
) -> None:
    """Move ``app`` to ``status`` (IllegalTransition unless the table allows it): persisted with
    its history row, then published on the project's topic, so a subscriber that reconnects
    loses nothing. ``oom_killed``: the engine's own OOM flag behind a crash, for the alert."""
    if not can_change(app.status, status):
        raise IllegalTransition(app.number, app.status, status)
    old, app.status = app.status, status
    fields = ["status"]
    if status in FINISHED:
        app.finished_at = datetime.now(UTC)
        fields.append("finished_at")
    if reason is not None:
        app.failure_reason = reason
        fields.append("failure_reason")
    async with in_transaction():
        await app.save(update_fields=fields)
        await StatusChange.create(application=app, status=status, message=reason)
    project = await app.project
    await get_bus().publish(
        project_topic(project.id),
        EventKind.APPLICATION_STATUS,
        {"project": project.name, "number": app.number, "status": status.value, "message": reason},
    )
    await alerts.status_changed(  # issue 18 webhooks
        project, app.number, old, status, reason, oom_killed=oom_killed
    )


__all__ = [
    "FAILED",
    "FINISHED",
    "INITIAL",
    "IN_PROGRESS",
    "LIVE",
    "RELEASED",
    "TRANSITIONS",
    "ApplicationStatus",
    "IllegalTransition",
    "can_change",
    "is_finished",
    "set_status",
]
