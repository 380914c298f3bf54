"""GraphQL execution with a fast path for plain leaf fields (issue 17).

graphql-core executes every field the same way: a ``GraphQLResolveInfo``, the resolver, then
``complete_value``'s walk down the type (non-null, list, leaf). For a field that is only an
attribute of its object (a Strawberry field without a resolver, arguments or field extensions)
of a scalar or enum type, that machinery returns ``coerce_output_value(getattr(obj, name))``.
The dashboard's query is about 200 fields, nearly all of them such leaves (a release's
``number``, ``status``, ``createdAt``), and their execution was most of its CPU time.

``LeafFastExecutionContext`` answers those fields directly with the same calls (Strawberry's
default resolver, the type's own ``coerce_output_value``) and hands any other case back to
graphql-core unchanged: a field with a resolver, arguments or a non-leaf type, and every
abnormal value (``None``, an exception, a value the type cannot coerce), so errors, null
propagation and their messages are exactly graphql-core's.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    get_nullable_type,
    is_leaf_type,
)
from graphql.execution.middleware import MiddlewareManager
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

# (resolver, python name, leaf type) of a plain leaf field; None: not one.
Plain = tuple[Callable[[Any, str], Any], str, GraphQLLeafType] | None


def plain_leaf(field: GraphQLField) -> Plain:
    """How to read ``field`` directly, when it is a plain attribute of a leaf type."""
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        not isinstance(definition, StrawberryField)
        or not definition.is_basic_field  # a resolver or field extensions (permissions...)
        or field.args
        or not getattr(field.resolve, "_is_default", False)
    ):
        return None
    leaf = get_nullable_type(field.type)
    if not is_leaf_type(leaf):
        return None
    return definition.default_resolver, definition.python_name, leaf


# Per schema, per (parent type, field name): what plain_leaf says, computed on first use.
_PLAIN: weakref.WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], Plain]] = (
    weakref.WeakKeyDictionary()
)
_MISS = object()  # not a plain leaf, or not a normal value: graphql-core's own path


class LeafFastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with plain leaf fields read directly (see above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # None while a resolver middleware runs: then nothing is bypassed.
        self._leaves: dict[tuple[str, str], Plain] | None = None
        if not _middlewares(self.middleware_manager):
            self._leaves = _PLAIN.setdefault(self.schema, {})

    def _leaf(self, parent_type: GraphQLObjectType, field_details_list: Any, source: Any) -> Any:
        """The completed value of a plain leaf field with a normal value, else _MISS."""
        leaves = self._leaves
        if leaves is None:
            return _MISS
        key = (parent_type.name, field_details_list[0].node.name.value)
        try:
            plain = leaves[key]
        except KeyError:
            field = parent_type.fields.get(key[1])
            plain = leaves[key] = plain_leaf(field) if field is not None else None
        if plain is None:
            return _MISS
        resolve, python_name, leaf = plain
        try:
            value = resolve(source, python_name)
            if value is None or isinstance(value, Exception):
                return _MISS
            coerced = leaf.coerce_output_value(value)
        except Exception:  # graphql-core's path reports it, located
            return _MISS
        return _MISS if coerced is None or coerced is Undefined else coerced

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        # An object whose selected fields are all plain leaves (a release in a listing) is one
        # dict, built here; any other field sends the whole object through graphql-core.
        results: dict[str, Any] = {}
        for response_name, field_details_list in grouped_field_set.items():
            value = self._leaf(parent_type, field_details_list, source_value)
            if value is _MISS:
                return super().execute_fields(
                    parent_type, source_value, path, grouped_field_set, position_context
                )
            results[response_name] = value
        return results

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        value = self._leaf(parent_type, field_details_list, source)
        if value is not _MISS:
            return value
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


def _middlewares(manager: MiddlewareManager | None) -> bool:
    """Whether a resolver middleware runs: Strawberry passes a manager on every request, holding
    the extensions that implement ``resolve`` (none of ours do); with one, nothing is bypassed."""
    return manager is not None and bool(manager.middlewares)
