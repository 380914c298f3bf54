"""The event listener of `make up` (backend/supervise.py writes its supervisord config).

supervisord runs it as ``python -I -S backend/supervise_listener.py WIDTH RETRIES START_SECONDS
CONFIG``: it prints every program's output lines, prefixed with the program's name, and the
restarts and crash loops in words, on stderr (which supervisord copies to the terminal). It
imports ``sys`` and ``time`` only, and runs isolated without site-packages, so it costs a bare
interpreter (about 8 MB of RSS; as ``-m backend.supervise`` it loaded the package and
site-packages: 13 MB).
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # the type checker reads this as true; typing stays unimported at run time
if TYPE_CHECKING:
    from typing import TextIO


def _parse_headers(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split())


def format_state(
    event: str, headers: dict[str, str], config: str, retries: int, start_seconds: int
) -> str | None:
    """A PROCESS_STATE event in words; None for those not worth a line."""
    name = headers.get("processname", "?")
    if event == "PROCESS_STATE_EXITED":
        if headers.get("expected") == "1":
            return None
        return f"{name} exited unexpectedly (pid {headers.get('pid')}): restarting it"
    if event == "PROCESS_STATE_BACKOFF":
        return f"{name} crashed while starting (attempt {headers.get('tries')}): retrying"
    if event == "PROCESS_STATE_FATAL":
        return (
            f"{name} crashed {retries} times in a row within {start_seconds} s of starting: "
            f"crash loop, giving up. Fix it, then: supervisorctl -c {config} start {name}"
        )
    if event == "PROCESS_STATE_RUNNING":
        return f"{name} is running (pid {headers.get('pid')})"
    return None


class LinePrefixer:
    """Splits PROCESS_LOG chunks (not line aligned) into whole lines, per process."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._partial: dict[str, str] = {}

    def feed(self, name: str, data: str) -> list[str]:
        text = self._partial.pop(name, "") + data
        *whole, rest = text.split("\n")
        if rest:
            self._partial[name] = rest
        return [self.line(name, line) for line in whole]

    def line(self, name: str, text: str) -> str:
        return f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {text.rstrip()}"


def listen(
    width: int,
    config: str,
    retries: int,
    start_seconds: int,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
) -> None:
    """supervisord's event listener protocol: READY, read one event, RESULT, repeat."""
    prefixer = LinePrefixer(max(width, len("supervisor")))
    while True:
        stdout.write("READY\n")
        stdout.flush()
        raw = stdin.readline()
        if not raw:
            return  # supervisord went away
        header = _parse_headers(raw)
        body = stdin.read(int(header["len"]))
        event = header.get("eventname", "")
        if event.startswith("PROCESS_LOG"):
            meta, _, data = body.partition("\n")
            name = _parse_headers(meta).get("processname", "?")
            out = prefixer.feed(name, data)
        else:
            meta = body.split("\n", 1)[0]
            message = format_state(event, _parse_headers(meta), config, retries, start_seconds)
            out = [prefixer.line("supervisor", message)] if message else []
        if out:
            stderr.write("\n".join(out) + "\n")
            stderr.flush()
        stdout.write("RESULT 2\nOK")
        stdout.flush()


def main(argv: list[str]) -> int:
    # Positional, written by backend/supervise.py (argparse alone would add 1.6 MB).
    if len(argv) != 4 or not all(a.isdigit() for a in argv[:3]):
        print("usage: supervise_listener.py WIDTH RETRIES START_SECONDS CONFIG", file=sys.stderr)
        return 2
    width, retries, start_seconds = (int(a) for a in argv[:3])
    listen(width, argv[3], retries, start_seconds, sys.stdin, sys.stdout, sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
