"""Issue 17: plain leaf fields are read without graphql-core's per-field machinery, lists of
plain objects are completed at once, resolvers with plain scalar arguments are called without
Strawberry's wrapper (backend/api/execution.py), and every answer, error and null stays
graphql-core's and Strawberry's own.

Each query runs on the same Strawberry schema twice, with Strawberry's execution context and
with LeafFastExecutionContext, and the whole results (data and formatted errors, with their
paths, locations and messages) must be equal.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, NewType

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from backend.api import execution
from backend.api.execution import LeafFastExecutionContext, plain_leaf
from backend.api.schema import build_schema
from backend.settings import Settings

OddInt = NewType("OddInt", int)
# An even value cannot be served: the scalar gives None, which graphql-core reports.
ODD = strawberry.scalar(name="Odd", serialize=lambda v: v if v % 2 else None, parse_value=int)


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Item:
    number: int
    name: str
    color: Color
    at: datetime
    note: str | None
    must: str  # non-null: None here is an error that nulls the parent
    odd: OddInt
    tags: list[str]

    @strawberry.field
    def double(self) -> int:
        return self.number * 2

    @strawberry.field
    def scaled(self, by: int = 3) -> int:
        return self.number * by

    @strawberry.field
    def label(self, info: strawberry.Info, prefix: str, upper: bool | None = None) -> str:
        text = f"{prefix}{info.field_name}-{info.path.prev.key}-{self.number}"
        return text.upper() if upper else text

    @strawberry.field
    def refuse(self, limit: int, ratio: float = 0.5) -> float:
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        return limit * ratio

    @strawberry.field
    def colored(self, color: Color) -> bool:  # an enum argument: Strawberry converts it
        return self.color == color

    @strawberry.field
    async def later(self, times: int = 2) -> int:
        return self.number * times


class Broken(Item):
    """Reading ``name`` fails: the error must be graphql-core's, located at the field."""

    @property  # type: ignore[override]
    def name(self) -> str:
        raise ValueError("no name today")

    @name.setter
    def name(self, value: str) -> None:
        pass


def item(number: int, **changes: Any) -> Item:
    values: dict[str, Any] = {
        "number": number,
        "name": f"item {number}",
        "color": Color.BLUE if number % 2 else Color.RED,
        "at": datetime(2026, 12, 3, 18, number, tzinfo=UTC),
        "note": None if number % 2 else "even",
        "must": "yes",
        "odd": 1 + 2 * number,
        "tags": ["a", "b"],
    }
    values.update(changes)
    return Item(**values)


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [item(1), item(2), item(3)]

    @strawberry.field
    def bad_must(self) -> list[Item | None]:
        return [item(1), item(2, must=None), item(3)]

    @strawberry.field
    def bad_odd(self) -> list[Item]:
        return [item(1), item(2, odd=4)]

    @strawberry.field
    def broken(self) -> Item | None:
        return Broken(**vars(item(5)))

    @strawberry.field
    def maybe_items(self) -> list[Item | None]:
        return [item(1), None, item(3)]

    @strawberry.field
    def wrong_type(self) -> Item:
        wrong = item(1)
        wrong.number = "not a number"  # type: ignore[assignment]
        return wrong


def schema(fast: bool, extensions: list[Any] | None = None) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        extensions=extensions or [],
        config=StrawberryConfig(scalar_map={OddInt: ODD}),
        execution_context_class=LeafFastExecutionContext
        if fast
        else StrawberryGraphQLCoreExecutionContext,
    )


def run(fast: bool, query: str, **variables: Any) -> dict[str, Any]:
    result = schema(fast).execute_sync(query, variable_values=variables)
    return {
        "data": result.data,
        "errors": [e.formatted for e in result.errors or []],
    }


QUERIES = [
    # Plain leaves of every kind, with aliases, a fragment, __typename, directives, arguments.
    """{ items { number name color at note must odd tags double scaled(by: 5)
       alias: number __typename ...F } }
       fragment F on Item { again: name }""",
    """query($skip: Boolean!) { items { number name @skip(if: $skip) color @include(if: $skip) } }""",
    # A non-null leaf that is None: the item is nulled, the error located at the field.
    "{ badMust { number must name } }",
    # A value the scalar cannot serialize: an error, propagated to the non-null list item.
    "{ badOdd { number odd } }",
    # Reading the attribute raises: graphql-core's error at broken.name.
    "{ broken { number name color } }",
    # A value of the wrong type for Int.
    "{ wrongType { number name } }",
    # Lists of plain objects: every leaf kind, a null item, an alias, __typename.
    "{ items { number name color at note must odd n: number __typename } }",
    "{ maybeItems { number color } }",
    # Resolvers with scalar arguments: literals, variables, defaults, info, an enum argument.
    """query($p: String!, $limit: Int!) { items { label(prefix: $p) loud: label(prefix: "x",
       upper: true) refuse(limit: $limit) half: refuse(limit: 3, ratio: 0.25)
       colored(color: RED) scaled } }""",
    # A resolver with arguments that raises: the error at each item, as Strawberry's.
    "{ items { number refuse(limit: -1) } }",
]

VARIABLES = {"skip": True, "p": "pre-", "limit": 4}


@pytest.mark.parametrize("query", QUERIES)
def test_the_same_answer_and_errors_as_graphql_core(query: str) -> None:
    variables = {k: v for k, v in VARIABLES.items() if f"${k}" in query}
    base = run(False, query, **variables)
    fast = run(True, query, **variables)
    assert fast == base
    if "items" in query and "limit: -1" not in query:  # the queries that succeed
        assert base["data"] and not base["errors"]


async def test_an_async_resolver_with_arguments_answers_the_same() -> None:
    query = '{ items { later twice: later(times: 3) label(prefix: "a") } }'
    results = [await schema(fast).execute(query) for fast in (False, True)]
    assert results[0].data == results[1].data and not results[1].errors
    assert results[1].data == {
        "items": [
            {"later": n * 2, "twice": n * 3, "label": f"alabel-{i}-{n}"}
            for i, n in enumerate((1, 2, 3))
        ]
    }


def test_only_plain_scalar_arguments_take_the_direct_path() -> None:
    graphql_schema = schema(True)._schema
    fields = graphql_schema.type_map["Item"].fields  # type: ignore[union-attr]
    direct = {
        name
        for name, field in fields.items()
        if execution.direct_resolver(field, strawberry.Info, lambda a: a.python_name)
    }
    # Not: an enum argument (colored), no arguments (double), no resolver (number).
    assert direct == {"scaled", "label", "refuse", "later"}
    api = build_schema(Settings(secret_key="unit"))._schema
    replaced = execution._direct_resolvers(api)
    assert replaced is not None
    project = api.type_map["Project"].fields  # type: ignore[union-attr]
    assert project["applications"].resolve in replaced.replacements
    query = api.type_map["Query"].fields  # type: ignore[union-attr]
    assert query["project"].resolve not in replaced.replacements  # root fields keep Strawberry's


def test_the_error_cases_are_errors() -> None:
    """Not just equal: the bad paths do report (so the equality above is not two empty
    answers)."""
    assert run(True, "{ badMust { number must } }")["data"] == {
        "badMust": [{"number": 1, "must": "yes"}, None, {"number": 3, "must": "yes"}]
    }
    errors = run(True, "{ badMust { must } }")["errors"]
    assert [e["path"] for e in errors] == [["badMust", 1, "must"]]
    assert "Cannot return null for non-nullable field Item.must" in errors[0]["message"]
    broken = run(True, "{ broken { number name } }")
    assert broken["data"] == {"broken": None}
    assert broken["errors"][0]["message"] == "no name today"
    assert broken["errors"][0]["path"] == ["broken", "name"]
    odd = run(True, "{ badOdd { odd } }")
    assert odd["data"] is None and odd["errors"][0]["path"] == ["badOdd", 1, "odd"]
    wrong = run(True, "{ wrongType { number } }")
    assert wrong["data"] is None and "Int cannot represent" in wrong["errors"][0]["message"]
    refused = run(True, "{ items { number refuse(limit: -1) } }")
    assert refused["data"] is None
    assert refused["errors"][0]["message"] == "limit must not be negative, got -1"
    assert refused["errors"][0]["path"] == ["items", 0, "refuse"]
    maybe = run(True, "{ maybeItems { number } }")
    assert maybe["data"] == {"maybeItems": [{"number": 1}, None, {"number": 3}]}


def test_only_plain_leaves_take_the_fast_path() -> None:
    graphql_schema = schema(True)._schema
    fields = graphql_schema.type_map["Item"].fields  # type: ignore[union-attr]
    plain = {name for name, field in fields.items() if plain_leaf(field) is not None}
    # Not: a list (tags), resolvers (double), arguments (scaled).
    assert plain == {"number", "name", "color", "at", "note", "must", "odd"}
    query_fields = graphql_schema.type_map["Query"].fields  # type: ignore[union-attr]
    assert all(plain_leaf(f) is None for f in query_fields.values())


class CountLeaves(SchemaExtension):
    """A resolver middleware: it must see every field, leaves included."""

    seen: list[str] = []

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        CountLeaves.seen.append(info.field_name)
        return _next(root, info, *args, **kwargs)


def test_a_resolver_middleware_still_sees_every_field() -> None:
    seen = {}
    for fast in (False, True):
        CountLeaves.seen = []
        result = schema(fast, [CountLeaves]).execute_sync(
            "{ items { number name color scaled(by: 2) } }"
        )
        assert not result.errors
        seen[fast] = list(CountLeaves.seen)
    assert seen[True] == seen[False]
    assert seen[True].count("number") == 3 and seen[True].count("scaled") == 3


def test_the_api_schema_uses_it() -> None:
    api = build_schema(Settings(secret_key="unit"))
    assert api.execution_context_class is LeafFastExecutionContext
    application = api._schema.type_map["Application"].fields  # type: ignore[union-attr]
    assert plain_leaf(application["number"]) is not None
    assert plain_leaf(application["status"]) is not None
    assert plain_leaf(application["createdAt"]) is not None
    assert plain_leaf(application["replicas"]) is None  # a resolver


def test_the_lookup_table_is_per_schema() -> None:
    one, two = schema(True), schema(True)
    for s in (one, two):
        assert not s.execute_sync("{ items { number } }").errors
    assert one._schema in execution._PLAIN and two._schema in execution._PLAIN
    assert execution._PLAIN[one._schema] is not execution._PLAIN[two._schema]
