"""The data dir's disk fills up (a small tmpfs mounted for the test): pushes and API writes fail
with a clear reason, the live app keeps serving, nothing stored is corrupted, and everything
works again once space is freed."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api
from tests.support.platform import fixture, platform, push, tar_dir

pytestmark = pytest.mark.docker

TMPFS_MB = 64


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "data"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> Path:
    """Write until the disk is full; returns the file to delete to get the space back."""
    filler = path / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1024 * 1024, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


async def test_disk_full_fails_clearly_and_recovers(small_disk: Path) -> None:
    with platform(small_disk, health_check_timeout_seconds=20) as plat:
        name = f"u{secrets.token_hex(4)}"
        data = await Api(plat.api_url)(
            SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
        )
        api = Api(plat.api_url, data["signup"]["token"])
        client_id = data["signup"]["client"]["id"]
        project = f"d-{secrets.token_hex(3)}"
        await api("mutation($n: String!) { createProject(name: $n) { name } }", n=project)
        assert (await push(plat, client_id, project, tar_dir(fixture("static")))).ok

        filler = fill(small_disk)
        try:
            outcome = await push(
                plat, client_id, project, tar_dir(fixture("static"), {"v.txt": "2"})
            )
            assert not outcome.ok
            assert "disk is full" in outcome.reason, outcome.reason
            err = await api.error(
                "mutation($n: String!) { createProject(name: $n) { name } }", n="d-full"
            )
            assert err.code == "UNAVAILABLE", err.errors
            assert "disk is full" in str(err)
            # Reads still work and the live release still serves.
            state = await api(
                "query($p: String!) { project(name: $p) { liveApplication { number } } }",
                p=project,
            )
            assert state["project"]["liveApplication"]["number"] == 1
            async with httpx.AsyncClient(timeout=5) as http:
                resp = await http.get(
                    f"http://127.0.0.1:{plat.ingress_port}/",
                    headers={"Host": f"{project}.localhost"},
                )
            assert resp.status_code == 200
        finally:
            filler.unlink()

        # Nothing stored is corrupted.
        with sqlite3.connect(small_disk / "paastech.sqlite3") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # Space is back: writes and pushes work again, with no restart.
        await api("mutation($n: String!) { createProject(name: $n) { name } }", n="d-back")
        outcome = await push(plat, client_id, project, tar_dir(fixture("static"), {"v.txt": "3"}))
        assert outcome.ok, outcome.reason
        projects = [p["name"] for p in (await api("{ projects { name } }"))["projects"]]
        assert "d-full" not in projects and "d-back" in projects
