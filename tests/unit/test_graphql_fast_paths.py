"""Issue 17: the cheap paths of the API give what the slow ones gave.

Plain release rows convert as the Tortoise models do; the validation of a repeated document is
cached (the rules are made once); the NUL guard still refuses every way of spelling a NUL."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from strawberry.extensions.validation_cache import _get_validate_cache

from backend.api.context import Context
from backend.api.schema import build_schema
from backend.db.models import Application
from backend.db.rows import datetime_of, json_of


@pytest.mark.parametrize(
    "stored",
    [
        "2026-12-03 07:31:23.164503+00:00",  # what Tortoise writes on SQLite
        "2026-12-03 07:31:23+00:00",
        "2026-12-03T09:31:23.5+02:00",
        "2026-12-03 07:31:23",  # naive: the UTC default timezone
    ],
)
def test_a_stored_datetime_converts_as_the_model_does(stored: str) -> None:
    field = Application._meta.fields_map["created_at"]
    expected = field.to_python_value(stored)
    got = datetime_of(stored)
    assert got == expected and got.isoformat() == expected.isoformat()
    assert datetime_of(expected) == expected  # PostgreSQL gives datetimes
    assert datetime_of(None) is None


def test_a_json_column_converts_as_the_model_does() -> None:
    field = Application._meta.fields_map["replicas"]
    for stored in ('{"web": 2, "worker": 1}', "[]", '["a.example.com"]'):
        assert json_of(stored) == field.to_python_value(stored)
    assert json_of({"web": 1}) == {"web": 1}


def _context() -> Context:
    return Context(request=SimpleNamespace(headers={}), remote_addr="127.0.0.1")  # type: ignore[arg-type]


async def test_a_repeated_document_is_validated_once() -> None:
    schema = build_schema()
    query = "{ projects { name applications(first: 3) { number status } } }"
    cache = _get_validate_cache(256)
    await schema.execute(query, context_value=_context())
    before = cache.cache_info()
    for _ in range(3):
        result = await schema.execute(query, context_value=_context())
        assert result.errors and result.errors[0].extensions["code"] == "UNAUTHENTICATED"
    after = cache.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)


async def test_validation_rules_still_refuse_a_deep_or_aliased_document() -> None:
    schema = build_schema()
    deep = "{ me { projects { applications { replicas { processType } } } } }"
    for _ in range(2):  # the second answer comes from the cache: the same errors
        result = await schema.execute(
            "{" + " ".join(f"a{i}: me {{ id }}" for i in range(30)) + "}", context_value=_context()
        )
        assert result.errors and "aliases" in result.errors[0].message.lower()
    assert (await schema.execute(deep, context_value=_context())).errors


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        ('{ project(name: "a\\u0000b") { name } }', None, "name"),
        ('{ project(name: "a\\u{0}b") { name } }', None, "name"),
        ('{ project(name: "a\x00b") { name } }', None, "name"),
        ('{ project(name: """a\x00b""") { name } }', None, "name"),
        ("query($n: String!) { project(name: $n) { name } }", {"n": "a\x00b"}, "name"),
        (
            'mutation($v: [EnvVarInput!]!) { setEnvVars(project: "p", vars: $v) { project { name } } }',
            {"v": [{"key": "K", "value": "x\x00"}]},
            "value",
        ),
    ],
)
async def test_a_nul_is_refused_however_it_is_spelled(
    query: str, variables: dict | None, field: str
) -> None:
    result = await build_schema().execute(
        query, variable_values=variables, context_value=_context()
    )
    assert result.errors, result
    error = result.errors[0]
    assert error.extensions["code"] == "VALIDATION" and error.extensions.get("field") == field
