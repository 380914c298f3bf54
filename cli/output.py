"""Output for people (rich tables, colour only on a terminal) and for scripts (--json)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text as Text  # re-exported: commands build styled cells as output.Text

STATUS_STYLES = {
    "QUEUED": "yellow",
    "BUILDING": "yellow",
    "DEPLOYING": "yellow",
    "RUNNING": "green",
    "SUPERSEDED": "dim",
    "FAILED": "red",
    "CRASHED": "red",
    "STOPPED": "magenta",
}
PROCESS_COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "bright_red"]


def colour_wanted(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _console(stream: Any) -> Console:
    tty = colour_wanted(stream)
    return Console(
        file=stream,
        force_terminal=tty,
        no_color=not tty,
        color_system="auto" if tty else None,
        highlight=False,
        soft_wrap=not tty,
        # Not a terminal: wide enough that tables never wrap or truncate in pipes and tests.
        width=None if tty else 200,
    )


def out() -> Console:
    return _console(sys.stdout)


def err() -> Console:
    return _console(sys.stderr)


def is_tty(stream: Any = None) -> bool:
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# Under --json, stdout holds the JSON document only: lines for people go to stderr.
json_mode = False


def say(message: str, style: str | None = None) -> None:
    """A line for people on stdout (markup off: values may contain brackets)."""
    (err() if json_mode else out()).print(Text(message, style=style or ""))


def note(message: str, style: str | None = "dim") -> None:
    """Progress and hints on stderr, so that stdout stays clean for pipes."""
    err().print(Text(message, style=style or ""))


def error(message: str) -> None:
    stream = sys.stderr
    stream.write(f"error: {message}\n")
    stream.flush()


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        t.add_row(*(cell if isinstance(cell, Text) else Text(_cell(cell)) for cell in row))
    out().print(t)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """A `key: value` block (like `heroku info`)."""
    width = max(len(k) for k, _ in pairs) + 1
    console = out()
    for key, value in pairs:
        console.print(Text(f"{key + ':':<{width}} ", style="bold"), Text(_cell(value)), sep="")


def status_text(status: str | None) -> Text:
    if not status:
        return Text("-")
    return Text(status.lower(), style=STATUS_STYLES.get(status, ""))


STATE_STYLES = {
    "RUNNING": "green",
    "IDLE": "yellow",
    "DEPLOYING": "yellow",
    "CRASHED": "red",
    "FAILED": "red",
    "STOPPED": "magenta",
    "NEW": "dim",
}


def state_words(state: str | None) -> str:
    """A project's state (issue 18): never "running" for what serves nothing."""
    if not state:
        return "-"
    return "idle (0 web)" if state == "IDLE" else state.lower()


def state_text(state: str | None) -> Text:
    return Text(state_words(state), style=STATE_STYLES.get(state or "", ""))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(value: str | None, now: datetime | None = None) -> str:
    """'12s ago', '5m ago', '3h ago', '2d ago'."""
    when = parse_time(value)
    if when is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def short_sha(sha: str | None) -> str:
    return sha[:7] if sha else "-"


class Spinner:
    """A rich status spinner on stderr when it is a terminal; plain progress lines otherwise."""

    def __init__(self) -> None:
        self._status: Status | None = None
        self._last = ""

    def update(self, message: str) -> None:
        if message == self._last:
            return
        self._last = message
        if self._status is not None:
            self._status.update(message)
        else:
            note(message)

    @contextmanager
    def running(self, message: str) -> Iterator[Spinner]:
        if is_tty(sys.stderr):
            with err().status(message) as status:
                self._status = status
                self._last = message
                try:
                    yield self
                finally:
                    self._status = None
        else:
            self.update(message)
            yield self
