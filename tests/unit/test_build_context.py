"""The pushed tree's tar handling (build_context.py): root files for detection, and the unpack
that refuses entries escaping the tree."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from backend.pomegranate.build_context import (
    MAX_ROOT_FILE_BYTES,
    extract_context,
    read_root_files,
)
from backend.pomegranate.runtime import BuildError


def _tar(entries: dict[str, bytes], *, symlink: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
        if symlink is not None:
            link = tarfile.TarInfo(symlink[0])
            link.type = tarfile.SYMTYPE
            link.linkname = symlink[1]
            tar.addfile(link)
    return buffer.getvalue()


def test_root_files_named_and_detection_files_read(tmp_path: Path) -> None:
    data = _tar(
        {
            "./Procfile": b"web: python app.py\n",
            "app.py": b"print(1)\n",
            "lib/requirements.txt": b"not at the root\n",
        }
    )
    path = tmp_path / "source.tar"
    path.write_bytes(data)
    for source in (data, path, str(path)):
        files = read_root_files(source)
        assert files == {"Procfile": b"web: python app.py\n", "app.py": None}


def test_an_oversized_detection_file_names_itself() -> None:
    data = _tar({"package.json": b" " * (MAX_ROOT_FILE_BYTES + 1)})
    with pytest.raises(BuildError) as caught:
        read_root_files(data)
    assert caught.value.step == "package.json"


def test_not_a_tar_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not a readable tar archive"):
        read_root_files(b"this is not a tar archive at all" * 40)
    with pytest.raises(BuildError, match="not a readable tar archive"):
        extract_context(b"this is not a tar archive at all" * 40, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extract_unpacks_the_tree(tmp_path: Path) -> None:
    path = tmp_path / "source.tar"
    path.write_bytes(_tar({"index.html": b"<p>hi</p>", "static/app.css": b"p{}"}))
    extract_context(path, tmp_path / "ctx")
    assert (tmp_path / "ctx" / "index.html").read_bytes() == b"<p>hi</p>"
    assert (tmp_path / "ctx" / "static" / "app.css").read_bytes() == b"p{}"
    assert path.exists()  # read in place, not consumed


@pytest.mark.parametrize(
    ("entries", "symlink", "named"),
    [
        ({"../escape.txt": b"x"}, None, "../escape.txt"),
        ({}, ("link", "/etc/passwd"), "link -> /etc/passwd"),
    ],
)
def test_extract_refuses_entries_outside_the_tree(
    tmp_path: Path, entries: dict[str, bytes], symlink: tuple[str, str] | None, named: str
) -> None:
    dest = tmp_path / "ctx"
    dest.mkdir()
    with pytest.raises(BuildError, match="points outside it") as caught:
        extract_context(_tar(entries, symlink=symlink), dest)
    assert named in str(caught.value)
    assert not (tmp_path / "escape.txt").exists()


def test_extract_keeps_an_absolute_name_inside_the_tree(tmp_path: Path) -> None:
    extract_context(_tar({"/tmp/escape.txt": b"x"}), tmp_path / "ctx")
    assert (tmp_path / "ctx" / "tmp" / "escape.txt").read_bytes() == b"x"
