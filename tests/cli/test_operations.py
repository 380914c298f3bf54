"""Every GraphQL operation the CLI sends is a file in cli/operations, valid against schema.graphql."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, build_schema, parse, validate

from cli.client import OPERATIONS_DIR, operation_names

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = build_schema((ROOT / "schema.graphql").read_text())
FILES = sorted(OPERATIONS_DIR.glob("*.graphql"))


def test_there_are_operations() -> None:
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_operation_is_valid_against_the_schema(path: Path) -> None:
    document = parse(path.read_text())
    errors = validate(SCHEMA, document)
    assert errors == [], [e.message for e in errors]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1, "one operation per file"
    assert operations[0].name is not None and operations[0].name.value == path.stem


def test_every_operation_the_code_sends_has_a_file_and_every_file_is_used() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "cli").rglob("*.py"))
    used = set(re.findall(r'(?:execute|subscribe)\(\s*"([A-Za-z]+)"', source))
    # Mutations picked by name through a helper (e.g. _release_command("Deploy", ...)).
    used |= set(re.findall(r'_(?:release_command|domain_change)\(\s*"([A-Za-z]+)"', source))
    assert used, "no operations found in cli/"
    assert used <= set(operation_names()), used - set(operation_names())
    assert set(operation_names()) <= used, set(operation_names()) - used
