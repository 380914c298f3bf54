"""What a release's status reads as in the web app. One rule beside the API's own status: a
RUNNING release whose every process type is scaled to 0 serves nothing, so it reads "idle" (never
"running" or "live")."""

from __future__ import annotations

from typing import Any

IDLE = "IDLE"


def serves_nothing(replicas: list[dict[str, Any]]) -> bool:
    """Every process type at 0 replicas (a project with no process types yet serves by default)."""
    return bool(replicas) and all(r["replicas"] == 0 for r in replicas)


def shown_status(status: str, replicas: list[dict[str, Any]]) -> str:
    """The status as the page shows it: IDLE for a RUNNING release scaled to 0."""
    return IDLE if status == "RUNNING" and serves_nothing(replicas) else status
