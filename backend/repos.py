"""The one home of the git repositories' layout: DATA_DIR/repos/<project>.git, bare.

The API creates a project's repository with the project and removes it with it; gitd only ever
opens repositories that exist, at the path this module gives.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from backend import validation
from backend.settings import Settings, get_settings

REPOS_DIR = "repos"
INIT_TIMEOUT_SECONDS = 30


class RepoError(RuntimeError):
    pass


def repos_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).data_dir.resolve() / REPOS_DIR


def repo_path(project: str, settings: Settings | None = None) -> Path:
    """The bare repository of a project. The name must pass the project-name rule."""
    validation.project_name(project, field="project")
    root = repos_dir(settings)
    path = root / f"{project}.git"
    if path.parent != root:  # cannot happen for a valid name; checked anyway
        raise RepoError(f"repository path {path} is outside {root}")
    return path


def is_repo_path(path: str | Path, settings: Settings | None = None) -> bool:
    """True when ``path`` is exactly a project repository's path, inside the repos dir."""
    p = Path(path)
    if not p.is_absolute() or p.parent != repos_dir(settings) or not p.name.endswith(".git"):
        return False
    name = p.name.removesuffix(".git")
    try:
        return repo_path(name, settings) == p
    except Exception:
        return False


def git_url(project: str, settings: Settings | None = None) -> str:
    """The URL users push to (`git remote add paastech <url>`)."""
    s = settings or get_settings()
    return f"ssh://git@{s.git_host or s.host}:{s.gitd_port}/{project}.git"


def exists(project: str, settings: Settings | None = None) -> bool:
    path = repo_path(project, settings)
    return path.is_dir() and not path.is_symlink() and (path / "HEAD").is_file()


async def init_bare(
    project: str, settings: Settings | None = None, *, max_input_bytes: int = 0
) -> Path:
    """Create an empty bare repository for a new project (a stale one is replaced).

    ``max_input_bytes`` > 0 sets git's receive.maxInputSize: a push whose pack is larger is
    refused by git itself (the Client's repository quota, issue 11)."""
    path = repo_path(project, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        # Left over from a project of the same name that was removed without cleanup: a new
        # owner must never inherit its history.
        await remove(project, settings)
    proc = await asyncio.create_subprocess_exec(
        "git",
        "init",
        "--quiet",
        "--bare",
        "--initial-branch=main",
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(INIT_TIMEOUT_SECONDS):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RepoError(f"git init of {project} timed out") from None
    if proc.returncode != 0:
        raise RepoError(f"git init of {project} failed: {out.decode(errors='replace').strip()}")
    if max_input_bytes > 0:
        config = await asyncio.create_subprocess_exec(
            "git",
            "config",
            "--file",
            str(path / "config"),
            "receive.maxInputSize",
            str(max_input_bytes),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await config.communicate()
        if config.returncode != 0:
            raise RepoError(f"git config of {project} failed: {out.decode(errors='replace')}")
    return path


async def remove(project: str, settings: Settings | None = None) -> None:
    path = repo_path(project, settings)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        await asyncio.to_thread(shutil.rmtree, path)
