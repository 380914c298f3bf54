"""schema.graphql at the repo root is exported from the code (`make schema`)."""

from __future__ import annotations

from pathlib import Path

from backend.api.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_graphql_is_up_to_date() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_schema().as_str() + "\n", "schema.graphql is stale: run `make schema`"
