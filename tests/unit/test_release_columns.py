"""Issue 17: which columns of `application` a selection of releases needs
(backend/api/release_columns.py), and the release built from such a narrowed row."""

from __future__ import annotations

import pytest
from graphql import FieldNode, GraphQLObjectType, OperationDefinitionNode, parse

from backend.api.release_columns import (
    FIELD_COLUMNS,
    KEY_COLUMNS,
    columns_of,
    release_fields,
)
from backend.api.schema import build_schema
from backend.api.types import ApplicationStatus, ApplicationType
from backend.db.rows import APPLICATION_COLUMNS
from backend.settings import Settings


def test_every_field_of_application_is_mapped_to_real_columns() -> None:
    """A new field must say what it reads (else it would read every column, silently)."""
    schema = build_schema(Settings(secret_key="unit"))._schema
    application = schema.type_map["Application"]
    assert isinstance(application, GraphQLObjectType)
    assert set(FIELD_COLUMNS) == {*application.fields, "__typename"}
    for columns in FIELD_COLUMNS.values():
        assert set(columns) <= set(APPLICATION_COLUMNS)


def _listing(document: str) -> tuple[list[FieldNode], dict]:
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {d.name.value: d for d in parsed.definitions if hasattr(d, "type_condition")}
    listing = operation.selection_set.selections[0]
    assert isinstance(listing, FieldNode)
    return [listing], fragments


def test_the_columns_of_a_selection_through_fragments_and_aliases() -> None:
    nodes, fragments = _listing(
        """{ projects { name ...P latest: applications(first: 1) { number }
             applications { state ... on Application { createdAt } } } }
           fragment P on Project { applications { ...A } liveApplication { __typename } }
           fragment A on Application { envKeys }"""
    )
    groups = release_fields(nodes, fragments)
    assert [(name, len(found)) for name, found in groups] == [
        ("applications", 2),  # the fragment's and the direct one: one response key
        ("liveApplication", 1),
        ("applications", 1),  # `latest`
    ]
    columns = {i: columns_of(found, fragments) for i, (_, found) in enumerate(groups)}
    assert columns[0] == ("id", "project_id", "number", "status", "env_snapshot", "replicas",
                          "created_at")  # fmt: skip
    assert columns[1] == KEY_COLUMNS
    assert columns[2] == KEY_COLUMNS


def test_an_unknown_field_reads_every_column() -> None:
    nodes, fragments = _listing("{ projects { applications { number somethingNew } } }")
    ((_, found),) = release_fields(nodes, fragments)
    assert columns_of(found, fragments) == APPLICATION_COLUMNS
    nodes, fragments = _listing("{ projects { applications { ...Missing } } }")
    ((_, found),) = release_fields(nodes, fragments)
    assert columns_of(found, fragments) == APPLICATION_COLUMNS


def test_a_narrowed_row_gives_only_what_was_read() -> None:
    row = {"id": 7, "project_id": 3, "number": 2, "status": "running"}
    release = ApplicationType.of_row(row, "shop")
    assert (release.number, release.status, release.project_name) == (
        2,
        ApplicationStatus.RUNNING,
        "shop",
    )
    with pytest.raises(AttributeError):  # a column that was not read fails loudly
        release.created_at  # noqa: B018
