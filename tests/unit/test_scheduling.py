"""The suite's module order: longest measured module first, new modules last, order kept
within a module (tests/support/scheduling.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support import scheduling


def items(*nodeids: str) -> list:
    return [SimpleNamespace(nodeid=n) for n in nodeids]


def test_longest_module_first_and_unmeasured_last() -> None:
    given = items("a.py::t1", "b.py::t1", "a.py::t2", "new.py::t1", "c.py::t1", "b.py::t2")
    durations = {"a.py": 10.0, "b.py": 300.0, "c.py": 50.0}
    ordered = [i.nodeid for i in scheduling.longest_first(given, durations)]
    assert ordered == ["b.py::t1", "b.py::t2", "c.py::t1", "a.py::t1", "a.py::t2", "new.py::t1"]


def test_without_measurements_the_collection_order_stays() -> None:
    given = items("z.py::t", "a.py::t", "z.py::u")
    ordered = [i.nodeid for i in scheduling.longest_first(given, {})]
    assert ordered == ["z.py::t", "z.py::u", "a.py::t"]


def test_recorder_sums_phases_per_module(tmp_path: Path) -> None:
    out = tmp_path / "build" / "durations.json"
    recorder = scheduling.DurationRecorder(out)
    for nodeid, duration in [("m.py::a", 1.25), ("m.py::a", 2.0), ("n.py::b", 9.0)]:
        recorder.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, duration=duration))
    recorder.pytest_sessionfinish()
    assert json.loads(out.read_text()) == {"n.py": 9.0, "m.py": 3.2}
    assert list(scheduling.known_durations(out)) == ["n.py", "m.py"]


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]"])
def test_unreadable_durations_mean_none(tmp_path: Path, text: str) -> None:
    path = tmp_path / "d.json"
    path.write_text(text)
    assert scheduling.known_durations(path) == {}


def test_committed_durations_name_existing_modules() -> None:
    root = scheduling.DURATIONS.parent.parent
    assert scheduling.known_durations()
    for module in scheduling.known_durations():
        assert (root / module).is_file(), module
