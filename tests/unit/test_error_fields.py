"""Every VALIDATION and CONFLICT error names its field (extensions.field), so that clients show it
next to that field instead of guessing from the message (issue 13). The sign-up race, where the
unique index refuses the second of two identical sign-ups, is the case that had none."""

from __future__ import annotations

import ast
import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise import Tortoise

from backend.db.models import Client
from backend.errors import Conflict, ValidationFailed
from backend.services import accounts

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("ValidationFailed", "Conflict")


def _sources(top: Path) -> list[Path]:
    """The package's Python files. Hidden directories (the web app's .venv, its .web build
    output, which a browser test may be rewriting meanwhile) and node_modules are never entered:
    os.walk prunes them, where rglob walked them and failed on a file removed mid-walk."""
    paths = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "node_modules")
        paths += [Path(folder) / f for f in sorted(files) if f.endswith(".py")]
    return paths


def _calls_without_field(root: Path, packages: tuple[str, ...]) -> list[str]:
    found = []
    for package in packages:
        for path in _sources(root / package):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name in CHECKED and not any(k.arg in ("field", None) for k in node.keywords):
                    found.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    return found


def test_every_raise_names_its_field() -> None:
    assert _calls_without_field(ROOT, ("backend", "gitd", "cli", "frontend")) == []


def test_the_scan_finds_a_raise_without_field(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(
        'raise ValidationFailed("bad")\n'
        'raise errors.Conflict("taken")\n'
        'raise Conflict("taken", field="name")\n'
    )
    assert _calls_without_field(tmp_path, ("pkg",)) == [
        "pkg/m.py:1 ValidationFailed",
        "pkg/m.py:2 Conflict",
    ]


@pytest.mark.parametrize("error", [ValidationFailed, Conflict])
def test_field_is_required_and_reported(error: type[ValidationFailed | Conflict]) -> None:
    with pytest.raises(TypeError):
        error("no field")  # type: ignore[call-arg]  # the point of the test
    assert error("taken", field="name").extensions() == {"code": error.code, "field": "name"}


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[None]:
    # A file, not :memory:, so that the two sign-ups below use the database as the API does.
    path = tmp_path_factory.mktemp("race") / "db.sqlite3"
    await Tortoise.init(
        db_url=f"sqlite://{path}", modules={"models": ["backend.db.models"]}, use_tz=True
    )
    await Tortoise.generate_schemas()
    yield
    await Tortoise.close_connections()


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        (("race@example.com", "racer1"), ("race@example.com", "racer2"), "email"),
        (("one@example.com", "racer3"), ("two@example.com", "racer3"), "username"),
    ],
)
async def test_the_signup_race_conflict_names_its_field(
    db: None, first: tuple[str, str], second: tuple[str, str], field: str
) -> None:
    # Both pass the "already taken?" checks before either row is written (the password hash is
    # awaited in between): one is created, the other loses to the unique index.
    results = await asyncio.gather(
        accounts.signup(first[0], first[1], "correct-horse-7", "192.0.2.1"),
        accounts.signup(second[0], second[1], "correct-horse-7", "192.0.2.2"),
        return_exceptions=True,
    )
    created = [r for r in results if isinstance(r, Client)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1 and len(refused) == 1, results
    assert refused[0].extensions() == {"code": "CONFLICT", "field": field}
    assert refused[0].__cause__ is not None, "it was the unique index, not the early check"
    assert await Client.filter(username__in=[first[1], second[1]]).count() == 1
