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

Two wholesale shortcuts on top (second GraphQL pass): an object whose selected fields are all
plain leaves is built as one dict, and so is each object of a list of them (a project's
releases: no per-item ``complete_value`` walk). Both fall back to graphql-core for the whole
object or list at the first abnormal value, so the answer and its errors stay graphql-core's.

And a resolver whose arguments are all plain scalars (``applications(first: 3)``, once per
project of a listing) is called directly with graphql-core's coerced arguments: Strawberry's
per-call argument conversion returns those values unchanged for int, str, bool and float, and
its wrapper (info, extensions chain) was a fifth of the listing's CPU. It goes through
graphql-core's resolver-middleware hook, so info, errors and completion stay graphql-core's.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from graphql import (
    GraphQLField,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.middleware import MiddlewareManager
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField

_MISS = object()  # not a plain leaf, or not a normal value: graphql-core's own path
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # GraphQL's Int


class Plain(NamedTuple):
    """How to read a plain leaf field: Strawberry's default resolver, the attribute, and the
    leaf type's coercion (``coerce``: the same result as ``leaf.coerce_output_value``, or
    _MISS for any value graphql-core must see)."""

    resolve: Callable[[Any, str], Any]
    python_name: str
    coerce: Callable[[Any], Any]


def plain_leaf(field: GraphQLField) -> Plain | None:
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
    return Plain(definition.default_resolver, definition.python_name, coercion(leaf))


def coercion(leaf: GraphQLLeafType) -> Callable[[Any], Any]:
    """``leaf.coerce_output_value`` as a function giving _MISS for None, exceptions, errors and
    null results. Ints, strings and enum members take a shortcut with the same result:
    Strawberry's enum coercion scans the enum's values for every value."""
    coerce_output_value = leaf.coerce_output_value

    def general(value: Any) -> Any:
        if value is None or isinstance(value, Exception):
            return _MISS
        try:
            coerced = coerce_output_value(value)
        except Exception:  # graphql-core's path reports it, located
            return _MISS
        return _MISS if coerced is None or coerced is Undefined else coerced

    if leaf is GraphQLInt:

        def integer(value: Any) -> Any:
            if type(value) is int and _INT_MIN <= value <= _INT_MAX:
                return value
            return general(value)

        return integer
    if leaf is GraphQLString:

        def string(value: Any) -> Any:
            return value if type(value) is str else general(value)

        return string
    if isinstance(leaf, CustomGraphQLEnumType):
        members: Any = leaf.wrapped_cls  # the Python enum
        names: dict[Any, Any] = {}
        for member in members:
            name = general(member)
            if name is not _MISS:
                names[member] = name

        def enum(value: Any) -> Any:
            if type(value) is members:
                name = names.get(value, _MISS)
                if name is not _MISS:
                    return name
            return general(value)

        return enum
    return general


_SCALARS = (int, str, bool, float)  # the argument types Strawberry passes through unchanged

Resolver = Callable[..., Any]


def direct_resolver(
    field: GraphQLField, info_class: type, name_of: Callable[[Any], str]
) -> Resolver | None:
    """``field.resolve`` without Strawberry's per-call wrapper, when that wrapper only passes
    the arguments through: a resolver without field extensions whose arguments are all plain
    scalars (``name_of``: the argument's GraphQL name, by the schema's name converter)."""
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        not isinstance(definition, StrawberryField)
        or definition.base_resolver is None
        or definition.extensions
        or definition.is_subscription
        or not field.args
    ):
        return None
    names = {}
    for argument in definition.arguments:
        kind = argument.type
        if isinstance(kind, StrawberryOptional):
            kind = kind.of_type
        if kind not in _SCALARS or argument.python_name is None:
            return None
        names[name_of(argument)] = argument.python_name
    if set(names) != set(field.args):
        return None
    resolver = definition.base_resolver
    takes_self = resolver.self_parameter is not None
    sources = [p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p]
    info_name = resolver.info_parameter.name if resolver.info_parameter else None

    def direct(source: Any, info: Any, **args: Any) -> Any:
        # What Strawberry's get_arguments gives the resolver (strawberry/schema/schema_converter).
        kwargs = {names[name]: value for name, value in args.items()}
        for name in sources:
            kwargs[name] = source
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=definition)
        return resolver(source, **kwargs) if takes_self else resolver(**kwargs)

    return direct


class DirectResolvers:
    """graphql-core's resolver-middleware hook (``get_field_resolver``), used to swap the
    resolvers ``direct_resolver`` accepts; only set when no real middleware runs."""

    def __init__(self, replacements: dict[Resolver, Resolver]) -> None:
        self.replacements = replacements
        self.middlewares: tuple[()] = ()

    def get_field_resolver(self, resolve: Resolver) -> Resolver:
        return self.replacements.get(resolve, resolve)


def _direct_resolvers(schema: GraphQLSchema) -> DirectResolvers | None:
    strawberry_schema = getattr(schema, "_strawberry_schema", None)
    if strawberry_schema is None or getattr(
        strawberry_schema.schema_converter, "_exception_handler_specs", None
    ):
        return None  # Strawberry's exception handlers run in its wrapper: keep it
    config = strawberry_schema.config
    # Fields of objects only: a root field runs once per request, a nested one once per object.
    roots = {schema.query_type, schema.mutation_type, schema.subscription_type}
    replacements = {}
    for named in schema.type_map.values():
        if (
            isinstance(named, GraphQLObjectType)
            and named not in roots
            and not named.name.startswith("__")
        ):
            for field in named.fields.values():
                direct = direct_resolver(
                    field, config.info_class, config.name_converter.from_argument
                )
                if direct is not None and field.resolve is not None:
                    replacements[field.resolve] = direct
    return DirectResolvers(replacements)


_DIRECT: weakref.WeakKeyDictionary[GraphQLSchema, DirectResolvers | None] = (
    weakref.WeakKeyDictionary()
)

# Per schema, per (parent type, field name): what plain_leaf says, computed on first use.
_PLAIN: weakref.WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], Plain | None]] = (
    weakref.WeakKeyDictionary()
)

# The plain leaves of a selection, by response name; None: some field is not a plain leaf.
Readers = list[tuple[str, Callable[[Any, str], Any], str, Callable[[Any], Any]]] | None


class LeafFastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with plain leaf fields read directly (see above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # None while a resolver middleware runs: then nothing is bypassed.
        self._leaves: dict[tuple[str, str], Plain | None] | None = None
        if not _middlewares(self.middleware_manager):
            self._leaves = _PLAIN.setdefault(self.schema, {})
            if self.schema not in _DIRECT:
                _DIRECT[self.schema] = _direct_resolvers(self.schema)
            direct = _DIRECT[self.schema]
            if direct is not None:
                self.middleware_manager = direct  # type: ignore[assignment]
        # Per grouped field set of this execution (graphql-core memoizes them per selection,
        # so the objects of a list share one): its readers, with the set kept alive so that
        # its id is not reused while this execution runs.
        self._readers: dict[int, tuple[Any, Readers]] = {}
        # @stream (not in our schema) would make a list's completion incremental.
        self._lists = self.schema.get_directive("stream") is None

    def _plain(self, parent_type: GraphQLObjectType, field_name: str) -> Plain | None:
        leaves = self._leaves
        if leaves is None:
            return None
        key = (parent_type.name, field_name)
        try:
            return leaves[key]
        except KeyError:
            field = parent_type.fields.get(field_name)
            plain = leaves[key] = plain_leaf(field) if field is not None else None
            return plain

    def _readers_of(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Readers:
        """The readers of a selection whose fields are all plain leaves, else None."""
        found = self._readers.get(id(grouped_field_set))
        if found is not None:
            return found[1]
        built: list[tuple[str, Callable[[Any, str], Any], str, Callable[[Any], Any]]] = []
        readers: Readers = built
        for response_name, field_details_list in grouped_field_set.items():
            plain = self._plain(parent_type, field_details_list[0].node.name.value)
            if plain is None:
                readers = None
                break
            built.append((response_name, plain.resolve, plain.python_name, plain.coerce))
        self._readers[id(grouped_field_set)] = (grouped_field_set, readers)
        return readers

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        # An object whose selected fields are all plain leaves (a release) is one dict, built
        # here; else graphql-core runs its fields (plain leaves still read by execute_field).
        readers = self._readers_of(parent_type, grouped_field_set)
        if readers is not None:
            built = _build(readers, source_value)
            if built is not None:
                return built
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        plain = self._plain(parent_type, field_details_list[0].node.name.value)
        if plain is not None:
            try:
                value = plain.resolve(source, plain.python_name)
            except Exception:  # graphql-core's path reports it, located
                value = None
            coerced = plain.coerce(value)
            if coerced is not _MISS:
                return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def complete_list_value(
        self,
        return_type: GraphQLList[Any],
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        # A list of objects whose selected fields are all plain leaves: each item one dict,
        # without graphql-core's per-item completion; any abnormal item: graphql-core's own.
        if self._leaves is not None and self._lists and type(result) is list:
            item_type = get_nullable_type(return_type.of_type)
            if is_object_type(item_type) and item_type.is_type_of is None:
                grouped_field_set, defers, _ = self.collect_subfields(item_type, field_details_list)
                readers = None if defers else self._readers_of(item_type, grouped_field_set)
                if readers is not None:
                    built = [_build(readers, item) for item in result]
                    if None not in built:
                        return built
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )


def _build(
    readers: list[tuple[str, Callable[[Any, str], Any], str, Callable[[Any], Any]]], source: Any
) -> dict[str, Any] | None:
    """The completed object of plain leaves, or None at the first value graphql-core must see."""
    if source is None:
        return None
    built = {}
    for response_name, resolve, python_name, coerce in readers:
        try:
            value = coerce(resolve(source, python_name))
        except Exception:  # reading the attribute failed: graphql-core reports it
            return None
        if value is _MISS:
            return None
        built[response_name] = value
    return built


def _middlewares(manager: MiddlewareManager | None) -> bool:
    """Whether a resolver middleware runs: Strawberry passes a manager on every request, holding
    the extensions that implement ``resolve`` (none of ours do); with one, nothing is bypassed."""
    return manager is not None and bool(manager.middlewares)
