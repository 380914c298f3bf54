"""Container output as lines: ANSI escapes and carriage returns removed."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def clean(line: str) -> str:
    return _ANSI.sub("", line).replace("\r", "").rstrip()


class LineSplitter:
    """Turns text chunks into complete lines."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, chunk: str) -> list[str]:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split("\n")
        return [clean(line) for line in lines]

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return [clean(rest)] if rest.strip() else []
