"""What an activity feed shows, as plain data: one row per record of the API's `activity`
(what, who with which token, from where, when). Pure functions (no Reflex here), so tests/unit
checks them without the web app's venv."""

from __future__ import annotations

import dataclasses
from typing import Any

MAX_ROWS = 100
SOURCES = {"web": "web app", "cli": "CLI", "git": "git push", "api": "API"}
SOURCE_COLORS = {"web": "indigo", "cli": "cyan", "git": "orange", "api": "gray"}


@dataclasses.dataclass
class ActivityRow:
    id: int = 0
    when: str = ""
    action: str = ""
    project: str = ""
    source: str = ""
    source_label: str = ""
    color: str = "gray"
    token: str = ""
    summary: str = ""


def activity_row(a: dict[str, Any]) -> ActivityRow:
    source = a["source"] if a["source"] in SOURCES else "api"
    return ActivityRow(
        id=int(a["id"]),
        when=(a.get("at") or "")[:19].replace("T", " ") + " UTC",
        action=a["action"],
        project=a.get("project") or "",
        source=source,
        source_label=SOURCES[source],
        color=SOURCE_COLORS[source],
        token=a.get("tokenName") or "",
        summary=a["summary"],
    )


def with_new(rows: list[ActivityRow], new: list[dict[str, Any]]) -> list[ActivityRow]:
    """Rows with live records added, newest first, each once (the subscription's first record
    may be one the list already has), at most MAX_ROWS."""
    known = {r.id for r in rows}
    added = [activity_row(a) for a in new if int(a["id"]) not in known]
    merged = sorted([*added, *rows], key=lambda r: r.id, reverse=True)
    unique: list[ActivityRow] = []
    seen: set[int] = set()
    for row in merged:
        if row.id not in seen:
            seen.add(row.id)
            unique.append(row)
    return unique[:MAX_ROWS]
