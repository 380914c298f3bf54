"""The whole-build reuse key (backend/pomegranate/build_reuse.py): what it keys on, and every
Dockerfile whose build may read something outside the key gets no key at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from backend.pomegranate.build_reuse import (
    RECORDS_KEPT,
    Reused,
    ReuseRecords,
    build_key,
    sources_known,
    tree_digest,
)

BASE = {"paastech/python:bookworm": "aaa111", "paastech/static:latest": "bbb222"}
DOCKERFILE = "FROM paastech/python:bookworm\nWORKDIR /app\nCOPY . /app\nCMD python3 app.py\n"


def tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text("print('hi')\n")
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("app.py", root / "link.py")
    return root


def test_the_same_tree_and_dockerfile_give_the_same_key(tmp_path: Path) -> None:
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    os.utime(b / "app.py", (1, 1))  # timestamps are not content: git keeps none
    assert build_key(a, DOCKERFILE, BASE) == build_key(b, DOCKERFILE, BASE) is not None


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "app.py").write_text("print('ho')\n"),
        lambda root: (root / "pkg" / "mod.py").rename(root / "pkg" / "other.py"),
        lambda root: (root / "run.sh").chmod(0o644),
        lambda root: (root / "new.txt").write_text(""),
        lambda root: (root / "empty").mkdir(),
        lambda root: (root / "link.py").unlink() or os.symlink("run.sh", root / "link.py"),
        lambda root: (root / "link.py").unlink(),
    ],
    ids=["content", "rename", "mode", "new-file", "new-dir", "link-target", "removed"],
)
def test_any_change_to_the_tree_changes_the_key(tmp_path: Path, change) -> None:
    before = build_key(tree(tmp_path / "t"), DOCKERFILE, BASE)
    change(tmp_path / "t")
    assert build_key(tmp_path / "t", DOCKERFILE, BASE) not in (None, before)


def test_the_dockerfile_and_the_base_image_id_are_in_the_key(tmp_path: Path) -> None:
    root = tree(tmp_path / "t")
    key = build_key(root, DOCKERFILE, BASE)
    assert build_key(root, DOCKERFILE + "ENV A=1\n", BASE) != key
    moved = {**BASE, "paastech/python:bookworm": "ccc333"}  # the engine's base image changed
    assert build_key(root, DOCKERFILE, moved) != key


def test_file_and_directory_names_cannot_be_confused(tmp_path: Path) -> None:
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "x" / "y").write_text("1")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x y").write_text("1")
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "b")


def test_a_link_to_a_directory_is_not_followed(tmp_path: Path) -> None:
    root = tree(tmp_path / "t")
    os.symlink("pkg", root / "alias")
    before = tree_digest(root)
    (root / "pkg" / "mod.py").write_text("X = 2\n")
    after = tree_digest(root)
    assert before != after  # once, through pkg/: the link's own entry is its target's name


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM docker.io/library/python:3.12\nCOPY . /app\n",  # public: the tag may have moved
        "FROM paastech/python:latest\n",  # not one of the platform's base images
        "ARG BASE=paastech/python:bookworm\nFROM $BASE\n",
        "FROM ${IMAGE}\n",
        "FROM paastech/python:bookworm\nCOPY --from=docker.io/library/busybox /bin/sh /sh\n",
        "FROM paastech/python:bookworm\nRUN --mount=type=bind,from=alpine:3,target=/x ls /x\n",
        "FROM paastech/python:bookworm\nADD https://example.com/a.tgz /a.tgz\n",
        "FROM paastech/python:bookworm\nADD \\\n  http://example.com/a /a\n",
        "FROM paastech/python:bookworm\nADD git@github.com:a/b.git /src\n",
        "FROM paastech/python:bookworm\nONBUILD RUN ls\n",
        "# escape=`\nFROM paastech/python:bookworm\n",
        "",
    ],
)
def test_a_build_that_may_read_outside_the_key_has_no_key(tmp_path: Path, dockerfile) -> None:
    assert sources_known(dockerfile, BASE) is None
    assert build_key(tree(tmp_path / "t"), dockerfile, BASE) is None


def test_stages_and_base_images_are_known_sources() -> None:
    dockerfile = (
        "# syntax is a comment here\n"
        "FROM --platform=linux/amd64 paastech/python:bookworm AS build\n"
        "RUN --mount=type=cache,target=/root/.cache pip --version\n"
        "FROM paastech/static:latest\n"
        "COPY --from=build /app /app\n"
        "COPY --from=0 /etc/os-release /os\n"
        "RUN --mount=type=bind,from=build,target=/b ls /b\n"
        "ADD local.tgz /srv/\n"
    )
    assert sources_known(dockerfile, BASE) == (
        "paastech/python:bookworm=aaa111\npaastech/static:latest=bbb222"
    )


def test_records_keep_the_newest_and_survive_garbage(tmp_path: Path) -> None:
    records = ReuseRecords(tmp_path / "store")
    assert records.get("k") is None
    for n in range(RECORDS_KEPT + 2):
        records.put(f"k{n}", Reused(f"sha256:{n}", n, [], n))
    assert records.get("k0") is None and records.get("k1") is None
    assert records.get(f"k{RECORDS_KEPT + 1}") == Reused(
        f"sha256:{RECORDS_KEPT + 1}", RECORDS_KEPT + 1, [], RECORDS_KEPT + 1
    )
    records.put("k2", Reused("sha256:new", 1, ["traefik.enable"], 99))  # a key built again
    assert records.get("k2") == Reused("sha256:new", 1, ["traefik.enable"], 99)
    records.path.write_text("{not json")
    assert records.get("k2") is None
    records.path.write_text('{"k": {"digest": "x"}}')
    assert records.get("k") is None
    records.clear()
    assert not records.path.exists()


def test_builds_ending_together_never_leave_a_torn_record(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    records = ReuseRecords(tmp_path / "store")

    def put(n: int) -> None:
        records.put(f"k{n % 12}", Reused(f"sha256:{n}", n, ["x"] * (n % 5), n))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(400)))
    loaded = json.loads(records.path.read_text())  # one whole version, never a partial write
    assert 1 <= len(loaded) <= RECORDS_KEPT
    assert sorted(p.name for p in records.path.parent.iterdir()) == ["reuse.json"]
