"""What an SSH exec request may ask for: a pure parser, no I/O.

``run <project> -- <command>...`` (Dokku's form, issue 14) asks for a one-off command: the text
after ``--`` is split into an argv by shell-like quoting rules (shlex), and that argv is run in
the app's container as it is, never by a shell on this host.

git sends ``git-receive-pack '<path>'`` (push) or ``git-upload-pack '<path>'`` (fetch, clone).
The path names a project's repository: ``<project>.git``, optionally with a leading ``/`` or
``~/``, the ``.git`` suffix optional, single-quoted as git sends it or bare. Anything else is
refused; nothing here ever reaches a shell.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TypeGuard

from backend import validation
from backend.errors import ValidationFailed

RECEIVE_PACK = "git-receive-pack"
UPLOAD_PACK = "git-upload-pack"
MAX_COMMAND_LENGTH = 200

# One space, then the path: single-quoted (no quote inside) or bare (no quote, no whitespace).
_COMMAND_RE = re.compile(
    r"(?P<service>git-receive-pack|git-upload-pack) (?:'(?P<quoted>[^']*)'|(?P<bare>[^'\s]+))"
)
_PRINTABLE_ASCII_RE = re.compile(r"[\x21-\x7e ]*")

RUN = "run"
MAX_RUN_COMMAND_LENGTH = 16 * 1024
RUN_USAGE = "refused: usage: run <project> -- <command>..., e.g. ssh -t git@HOST run myapp -- sh"
# A run command's text: printable, any language, but no control characters (escape sequences).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

NOT_ALLOWED = (
    "refused: this server only runs `git push` and `git fetch`/`git clone` of your projects; "
    "there is no shell"
)
BAD_PATH = "refused: the repository path must be <project>.git, e.g. 'myapp.git'"


class Refused(ValueError):
    """The command is not allowed. ``message`` is one line, safe to show (never echoes input)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class GitCommand:
    service: str  # RECEIVE_PACK or UPLOAD_PACK
    project: str

    @property
    def write(self) -> bool:
        return self.service == RECEIVE_PACK


def parse(command: str | bytes | None) -> GitCommand:
    """The git service and project a command asks for, or Refused."""
    if command is None:
        raise Refused(NOT_ALLOWED)
    if isinstance(command, bytes):
        try:
            command = command.decode("ascii")
        except UnicodeDecodeError:
            raise Refused(NOT_ALLOWED) from None
    if len(command) > MAX_COMMAND_LENGTH or not _PRINTABLE_ASCII_RE.fullmatch(command):
        raise Refused(NOT_ALLOWED)
    match = _COMMAND_RE.fullmatch(command)
    if match is None:
        service = command.split(" ", 1)[0]
        if service in (RECEIVE_PACK, UPLOAD_PACK):
            raise Refused(BAD_PATH)
        raise Refused(NOT_ALLOWED)
    path = match["quoted"] if match["quoted"] is not None else match["bare"]
    return GitCommand(match["service"], project_from_path(path))


def project_from_path(path: str) -> str:
    """``/x.git``, ``~/x.git``, ``x.git``, ``x`` -> ``x``; the name must be a valid project name."""
    for prefix in ("~/", "/"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    name = path.removesuffix(".git")
    try:
        return validation.project_name(name, field="project")
    except ValidationFailed as exc:
        if validation.PROJECT_NAME_RE.fullmatch(name):
            raise Refused(f"refused: {exc.message}") from None  # e.g. a reserved name
        raise Refused(BAD_PATH) from None


@dataclass(frozen=True)
class RunCommand:
    project: str
    argv: list[str]


def is_run(command: str | bytes | None) -> TypeGuard[str | bytes]:
    if isinstance(command, bytes):
        command = command.decode("utf-8", "replace")
    return command is not None and (command == RUN or command.startswith(RUN + " "))


def parse_run(command: str | bytes) -> RunCommand:
    """``run <project> -- <command>...`` -> project and argv, or Refused."""
    if isinstance(command, bytes):
        try:
            command = command.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(RUN_USAGE) from None
    if len(command) > MAX_RUN_COMMAND_LENGTH:
        raise Refused(f"refused: the command is longer than {MAX_RUN_COMMAND_LENGTH} characters")
    if _CONTROL_RE.search(command):
        raise Refused("refused: the command contains control characters")
    try:
        words = shlex.split(command)
    except ValueError:
        raise Refused("refused: unbalanced quotes in the command") from None
    if len(words) < 3 or words[0] != RUN or words[2] != "--":
        raise Refused(RUN_USAGE)
    argv = words[3:]
    if not argv or not argv[0]:
        raise Refused("refused: no command after --; " + RUN_USAGE.removeprefix("refused: "))
    try:
        project = validation.project_name(words[1], field="project")
    except ValidationFailed as exc:
        raise Refused(f"refused: {exc.message}") from None
    return RunCommand(project, argv)
