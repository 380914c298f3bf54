"""What a project serves, in words that never say "running" for something that serves nothing
(issue 18). The status machine (services/applications/status.py) says where a release is in
its life; this says what it does for a visitor: a live release scaled to 0 web replicas is
live, but idle: its URL answers 404.
"""

from __future__ import annotations

from enum import StrEnum

from backend import deploy_output
from backend.db.models import ApplicationStatus as S
from backend.labels import WEB_PROCESS
from backend.services.applications.status import IN_PROGRESS, LIVE


class State(StrEnum):
    NEW = "new"  # never released
    DEPLOYING = "deploying"  # a first release on its way, nothing live yet
    RUNNING = "running"  # live, with at least one web replica: the URL answers
    IDLE = "idle"  # live, with 0 web replicas: the URL serves nothing
    CRASHED = "crashed"  # live, but its processes crash (Docker restarts them)
    STOPPED = "stopped"  # stopped by its owner: nothing runs
    FAILED = "failed"  # its releases failed and nothing is live


def web_replicas(replicas: dict[str, int]) -> int:
    return int(replicas.get(WEB_PROCESS, 0) or 0)


def release_state(status: S, replicas: dict[str, int]) -> State | None:
    """The state of a live or stopped release; None for one that is not (or no longer) live."""
    if status == S.STOPPED:
        return State.STOPPED
    if status not in LIVE:
        return None
    if status == S.CRASHED:
        return State.CRASHED
    return State.RUNNING if web_replicas(replicas) > 0 else State.IDLE


def project_state(live: tuple[S, dict[str, int]] | None, latest: S | None) -> State:
    """From the live release (status, replicas), if any, and the newest release's status."""
    if live is not None:
        return release_state(*live) or State.FAILED
    if latest is None:
        return State.NEW
    if latest in IN_PROGRESS:
        return State.DEPLOYING
    if latest == S.STOPPED:
        return State.STOPPED
    return State.FAILED


def describe(state: State, replicas: dict[str, int] | None = None) -> str:
    """For people: "running", "idle (0 web)", ..."""
    if state == State.IDLE:
        return f"idle ({web_replicas(replicas or {})} web)"
    return state.value


def deployed_line(number: int, url: str, replicas: dict[str, int]) -> str:
    """The last line of a release's deploy log. With 0 web replicas the release is live but
    serves nothing: it must not read as "Application deployed" at its URL."""
    if web_replicas(replicas) > 0:
        return deploy_output.deployed(url)
    return deploy_output.released_idle(number, url)
