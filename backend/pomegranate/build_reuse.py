"""A push that changes nothing a build reads reuses the project's image (issue 17).

``buildah bud --layers`` of an unchanged tree hits its cache at every step and yields the image it
made last time, yet it still costs about 250 ms (a working container per step) plus the push to
the registry. The same decision is made here before buildah starts, from what its layer cache keys
on: the Dockerfile's text, the content of the build context, and the image each ``FROM`` names.

The key is conservative: a build that could read something not in the key is never reused, so
it runs as before (and buildah's own cache decides):

* a ``FROM``, ``COPY --from`` or ``RUN --mount=from=`` naming anything but a platform base image
  (whose engine image ID is in the key) or an earlier stage: a public image may have moved;
* a ``FROM`` or ``--from`` built from a variable (``$``);
* an ``ADD`` of a URL or a git repository: its content is fetched at build time.

Records live in the project's own build store (``reuse.json``, never readable by a build, never
shared between projects) and go when its layer cache is cleared, so "rebuild from scratch" keeps
its meaning. A record is used only while the registry still has its manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Bumped when the platform changes what a build produces from the same inputs (the builder's
# flags, label stripping): every older record then misses.
KEY_VERSION = "1"
RECORDS_KEPT = 10
RECORD_FILE = "reuse.json"
_FROM_FLAG = re.compile(r"(?:^|,)from=([^,\s]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Reused:
    """What a build with this key produced."""

    digest: str
    size_bytes: int
    stripped_labels: list[str]
    application: int


def _logical_lines(dockerfile: str) -> list[list[str]]:
    """Instructions as word lists: comments dropped, backslash continuations joined."""
    lines: list[list[str]] = []
    pending = ""
    for raw in dockerfile.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = (pending + stripped).strip()
        pending = ""
        if text:
            lines.append(text.split())
    if pending.strip():
        lines.append(pending.split())
    return lines


def sources_known(dockerfile: str, base_ids: dict[str, str]) -> str | None:
    """The Dockerfile's external inputs as a text for the key (each FROM's image and its engine
    ID), or None when the build may read something the key cannot hold."""
    if re.search(r"^\s*#\s*escape\s*=", dockerfile, re.IGNORECASE | re.MULTILINE):
        return None  # another escape character: the line joining above would be wrong
    stages: set[str] = set()
    count = 0
    used: list[str] = []

    def known(ref: str) -> bool:
        if "$" in ref:
            return False
        if ref.lower() in stages:
            return True
        if ref in base_ids:
            used.append(f"{ref}={base_ids[ref]}")
            return True
        return False

    for words in _logical_lines(dockerfile):
        instruction, args = words[0].upper(), words[1:]
        flags = [a for a in args if a.startswith("--")]
        plain = [a for a in args if not a.startswith("--")]
        if instruction == "FROM":
            if not plain or not known(plain[0]):
                return None
            if len(plain) >= 3 and plain[1].upper() == "AS":
                stages.add(plain[2].lower())
            stages.add(str(count))
            count += 1
        elif instruction in ("COPY", "ADD", "RUN"):
            for flag in flags:
                for ref in _FROM_FLAG.findall(flag.removeprefix("--")):
                    if not known(ref):
                        return None
            if instruction == "ADD" and any("://" in a or a.startswith("git@") for a in plain):
                return None
        elif instruction == "ONBUILD":
            return None  # a trigger's inputs are another image's business
    if count == 0:
        return None  # no stage: buildah fails the build and says why
    return "\n".join(used)


def tree_digest(root: Path) -> str:
    """A digest of a directory's entries: relative path, type, permission bits, and content
    (file bytes, link target). Timestamps are left out: git keeps none."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath, name)
            info = path.lstat()
            rel = path.relative_to(root).as_posix()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                digest.update(f"L {rel} {os.readlink(path)}\0".encode())
            elif stat.S_ISDIR(info.st_mode):
                digest.update(f"D {rel} {mode:o}\0".encode())
            else:
                digest.update(f"F {rel} {mode:o} {info.st_size}\0".encode())
                with path.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        digest.update(chunk)
        # Links to directories are not followed: os.walk lists them in dirnames.
        dirnames[:] = [d for d in dirnames if not Path(dirpath, d).is_symlink()]
    return digest.hexdigest()


def build_key(context: Path, dockerfile: str, base_ids: dict[str, str]) -> str | None:
    """The key of a build of ``context`` with ``dockerfile``; None when it must run."""
    sources = sources_known(dockerfile, base_ids)
    if sources is None:
        return None
    digest = hashlib.sha256()
    for part in (KEY_VERSION, dockerfile, sources, tree_digest(context)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


class ReuseRecords:
    """The project's last builds by key (``reuse.json`` in its build store)."""

    def __init__(self, store: Path):
        self.path = store / RECORD_FILE

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> Reused | None:
        entry = self._load().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            return Reused(
                digest=str(entry["digest"]),
                size_bytes=int(entry["size_bytes"]),
                stripped_labels=[str(x) for x in entry["stripped_labels"]],
                application=int(entry["application"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, key: str, built: Reused) -> None:
        """Record a build. Two builds of one project may end together: each writes its own
        temporary file and renames it over the records (atomic), so a reader sees one whole
        version; the other build's record may be lost, which only means a future build runs."""
        records = self._load()
        records.pop(key, None)
        records[key] = asdict(built)
        kept = dict(list(records.items())[-RECORDS_KEPT:])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{RECORD_FILE}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(json.dumps(kept))
            tmp.replace(self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
