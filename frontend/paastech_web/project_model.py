"""What the project page shows, as plain data: its rows and the pure functions that make them
from the API's answers (no Reflex here, so tests/unit checks them without the web app's venv)."""

from __future__ import annotations

import dataclasses
from typing import Any

HIDDEN = "••••••••"
LIVE_STATUSES = ("RUNNING", "CRASHED")  # Application.live in the schema
TABS = ("overview", "releases", "logs", "metrics", "activity", "settings", "addons")


@dataclasses.dataclass
class Release:
    number: int = 0
    status: str = ""
    cause: str = ""
    commit: str = ""
    created: str = ""
    failure: str = ""
    failed: bool = False
    live: bool = False
    has_image: bool = False
    # What a rollback to this release changes in the env vars, against the live release.
    reverts: str = ""


@dataclasses.dataclass
class EnvRow:
    key: str = ""
    shown: str = HIDDEN
    revealed: bool = False


@dataclasses.dataclass
class DomainRow:
    hostname: str = ""
    url: str = ""
    default: bool = False
    verified: bool = True
    # While unverified: the TXT record that proves control, and its value.
    record: str = ""
    value: str = ""
    certificate: str = ""  # HTTPS certificate status and reason (issue 21); "" while HTTPS is off


@dataclasses.dataclass
class ScaleRow:
    process_type: str = ""
    replicas: int = 0


@dataclasses.dataclass
class ProcRow:
    label: str = ""
    state: str = ""
    running: bool = False


def env_reverts(target: list[str], live: list[str], number: int) -> str:
    """What rolling back to release `number` (env keys `target`) does to the live env vars."""
    removed = sorted(set(live) - set(target))
    restored = sorted(set(target) - set(live))
    parts = [f"It runs v{number}'s image and env vars again."]
    if removed:
        parts.append("Removed: " + ", ".join(removed) + ".")
    if restored:
        parts.append("Restored: " + ", ".join(restored) + ".")
    if not removed and not restored:
        parts.append("Same env var names as now.")
    parts.append(f"Every value goes back to v{number}'s.")
    return " ".join(parts)


def release_row(a: dict[str, Any], live: int, live_keys: list[str]) -> Release:
    commit = (a.get("commitSha") or "")[:10]
    cause = a["cause"] or ""
    if commit and commit[:7] in cause:
        commit = ""  # the cause already names it: the commit shows once
    return Release(
        number=a["number"],
        status=a["status"],
        cause=cause,
        commit=commit,
        created=(a.get("createdAt") or "")[:19].replace("T", " "),
        failure=a.get("failureReason") or "",
        failed=a["status"] in ("FAILED", "CRASHED"),
        live=a["number"] == live and a["status"] in LIVE_STATUSES,
        has_image=bool(a.get("image")),
        reverts=env_reverts(a.get("envKeys") or [], live_keys, a["number"]),
    )


def certificate_text(cert: dict[str, Any] | None) -> str:
    """The certificate as one line: its status, expiry, and why there is none when it failed."""
    if not cert:
        return ""
    text = "HTTPS " + cert["status"].lower().replace("_", " ")
    if cert["notAfter"]:
        text += f" until {cert['notAfter'][:10]}"
    if cert["lastError"]:
        text += f": {cert['lastError']}"
    return text


def project_from_path(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return parts[1] if len(parts) >= 2 and parts[0] == "projects" else ""


def whole(text: Any) -> int | None:
    try:
        return int(str(text).strip())
    except ValueError:
        return None
