"""The pushed source tree as a tar archive: reading its root files and unpacking it.

Blocking (tarfile); callers run these in a thread. The tree is a ``SourceTar``: the bytes
themselves, or the path of the file the gRPC servicer spooled the push into (read in place, never
copied).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import IO

from backend.pomegranate.buildpacks import FILES_TO_READ
from backend.pomegranate.runtime import BuildError, SourceTar

# The Dockerfile the platform writes for a detected stack (outside the context: no user file can
# clash with it).
GENERATED_DOCKERFILE = "Dockerfile.paastech"
MAX_ROOT_FILE_BYTES = 1_000_000


def open_source(source: SourceTar) -> IO[bytes]:
    """A binary file object over ``source``; the caller closes it."""
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source)
    return open(source, "rb")


def _normalise(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def read_root_files(source: SourceTar) -> dict[str, str | bytes | None]:
    """Names of the files at the tree's root, with the content of those detection needs."""
    files: dict[str, str | bytes | None] = {}
    with open_source(source) as fh:
        try:
            tar = tarfile.open(fileobj=fh, mode="r:*")  # noqa: SIM115 - `with tar` below
        except tarfile.TarError as exc:
            raise BuildError(None, f"the source is not a readable tar archive: {exc}") from None
        with tar:
            for member in tar:
                name = _normalise(member.name)
                if not name or "/" in name.rstrip("/") or member.isdir():
                    continue
                content: bytes | None = None
                if name in FILES_TO_READ and member.isfile():
                    if member.size > MAX_ROOT_FILE_BYTES:
                        raise BuildError(name, f"{name} is larger than {MAX_ROOT_FILE_BYTES} bytes")
                    extracted = tar.extractfile(member)
                    content = extracted.read() if extracted else b""
                files[name] = content
    return files


def extract_context(source: SourceTar, dest: Path) -> None:
    """Unpack the pushed tree with tarfile's "data" filter: absolute paths, ``..``, device files
    and links pointing outside the tree are refused with the offending member's name."""
    with open_source(source) as opened:
        try:
            tar = tarfile.open(fileobj=opened, mode="r:*")  # noqa: SIM115 - `with tar` below
        except tarfile.TarError as exc:
            raise BuildError(None, f"the source is not a readable tar archive: {exc}") from None
        with tar:
            try:
                tar.extractall(dest, filter="data")
            except tarfile.FilterError as exc:
                member = getattr(exc, "tarinfo", None)
                name = member.name if member is not None else "?"
                target = f" -> {member.linkname}" if member is not None and member.linkname else ""
                raise BuildError(
                    None,
                    f"the pushed tree has an entry that points outside it: {name}{target}",
                ) from None
            except tarfile.TarError as exc:
                raise BuildError(None, f"the source is not a readable tar archive: {exc}") from None
