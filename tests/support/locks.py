"""Machine-wide test locks: an exclusive flock on a file, which the kernel drops when the
holding process dies, so a killed test run never leaves one behind."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO


def try_lock(path: Path) -> IO[str] | None:
    """The open file holding an exclusive lock on ``path``, or None while another holder has
    it. Closing the file releases the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
