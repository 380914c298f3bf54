"""The Swarm test cluster is one per machine: a second test run waits for the first one's
(tests/support/cluster.machine_lock), and gives up with a clear error past its bound."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from tests.support.cluster import machine_lock


def test_a_held_lock_makes_the_second_run_wait_then_give_up(tmp_path: Path) -> None:
    path = tmp_path / "cluster.lock"
    with path.open("a") as other:  # another run holds it (a separate open file: a separate lock)
        fcntl.flock(other, fcntl.LOCK_EX)
        with (
            pytest.raises(TimeoutError, match="still held by another test run"),
            machine_lock(path, wait=0.2),
        ):
            pass
        fcntl.flock(other, fcntl.LOCK_UN)
    with machine_lock(path, wait=0.2), path.open("a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    # Released at the end: the next run takes it at once.
    with machine_lock(path, wait=0):
        pass
