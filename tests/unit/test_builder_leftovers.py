"""A build killed with Pomegranate never reaches its own cleanup: its store's overlay home stays
bind-mounted and its work directory stays. Pomegranate clears both when it starts and after it
stops (builder.clean_leftovers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from backend.pomegranate.builder import _mounts_under, clean_leftovers
from backend.settings import Settings


def test_a_killed_builds_mounts_and_work_dir_are_cleared(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    home = tmp_path / "builder"
    overlay = home / "projects" / "shop" / "root" / "overlay"
    overlay.mkdir(parents=True)
    (overlay / "layer").mkdir()
    work = home / "work" / "shop-3-abc"
    (work / "context").mkdir(parents=True)
    # containers-storage binds its overlay home on itself, once per buildah run: they stack.
    for _ in range(2):
        subprocess.run(["mount", "--bind", str(overlay), str(overlay)], check=True)
    try:
        assert len(_mounts_under(home)) == 2
        assert clean_leftovers(settings) == 3
        assert _mounts_under(home) == []
        assert not work.exists()
        assert (overlay / "layer").is_dir()  # the store itself (the build cache) is kept
        assert clean_leftovers(settings) == 0
    finally:
        for _ in _mounts_under(home):
            subprocess.run(["umount", "-l", str(overlay)], check=False)


def test_nothing_to_clear_without_a_builder_home(tmp_path: Path) -> None:
    assert clean_leftovers(Settings(_env_file=None, data_dir=tmp_path / "none")) == 0
