"""The `paastech` git remote: which project the current directory deploys to."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import typer

from backend import validation
from backend.errors import ValidationFailed
from cli.client import EXIT_USAGE, CliError

REMOTE = "paastech"
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?[^:/]+:(?P<path>.+)$")


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise CliError("git is not installed") from None


def in_work_tree(cwd: Path | None = None) -> bool:
    result = git("rev-parse", "--is-inside-work-tree", cwd=cwd)
    return result.returncode == 0 and result.stdout.strip() == "true"


def remote_url(cwd: Path | None = None, name: str = REMOTE) -> str | None:
    result = git("remote", "get-url", name, cwd=cwd)
    return (result.stdout.strip() or None) if result.returncode == 0 else None


def project_from_url(url: str) -> str | None:
    """`ssh://git@host:2222/hello.git`, `git@host:hello.git`, `https://host/hello` -> `hello`."""
    url = url.strip()
    if "://" in url:
        path = urlparse(url).path
    else:
        match = _SCP_LIKE.match(url)
        path = match.group("path") if match else url
    name = path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    try:
        return validation.project_name(name)
    except ValidationFailed:
        return None


def set_remote(url: str, cwd: Path | None = None) -> str:
    """Add or fix the `paastech` remote; 'added', 'updated' or 'unchanged'."""
    current = remote_url(cwd)
    if current == url:
        return "unchanged"
    if current is None:
        result = git("remote", "add", REMOTE, url, cwd=cwd)
        verb = "added"
    else:
        result = git("remote", "set-url", REMOTE, url, cwd=cwd)
        verb = "updated"
    if result.returncode != 0:
        raise CliError(f"git remote failed: {result.stderr.strip()}")
    return verb


def remove_remote_if(project: str, cwd: Path | None = None) -> bool:
    url = remote_url(cwd)
    if url is not None and project_from_url(url) == project:
        return git("remote", "remove", REMOTE, cwd=cwd).returncode == 0
    return False


def resolve_project(option: str | None) -> str:
    """-p/--project, else the project of the `paastech` remote of the current directory."""
    if option:
        return option.strip()
    url = remote_url() if in_work_tree() else None
    if url:
        name = project_from_url(url)
        if name:
            return name
        raise CliError(
            f"cannot tell the project from the '{REMOTE}' remote ({url}); use -p/--project",
            EXIT_USAGE,
        )
    raise typer.BadParameter(
        f"no project: give -p/--project NAME, or run inside a git repository with a "
        f"'{REMOTE}' remote (see `paastech git:remote`)",
        param_hint="'--project' / '-p'",
    )
