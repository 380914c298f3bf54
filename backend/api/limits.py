"""What one request may ask for: query cost, auth mutations per request, subscriptions.

Depth, token and alias limits (strawberry's extensions) bound the document; the cost here bounds
what it materialises: every field costs 1, multiplied by the sizes of the lists above it (the
`first`/`tail` argument, else a default), so `applications(first: 100) { buildLog(first: 10000) }`
costs what it would read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from backend.errors import RateLimited, TooCostly
from backend.settings import Settings, get_settings

SIZE_ARGUMENTS = ("first", "tail")
AUTH_MUTATIONS = frozenset({"signup", "login"})


class QueryCost(SchemaExtension):
    """Refuses an operation whose cost is over the budget, before anything runs."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None:
            cost = operation_cost(
                ctx.schema._schema,
                document.definitions,
                ctx.operation_name,
                ctx.variables or {},
                self.settings.query_default_list_size,
            )
            if cost > self.settings.max_query_cost:
                # A GraphQLError with its code: raised here, it skips the resolvers' masking.
                err = TooCostly(cost, self.settings.max_query_cost)
                raise GraphQLError(err.message, extensions=err.extensions())
        yield


def operation_cost(
    schema: GraphQLSchema,
    definitions: Any,
    operation_name: str | None,
    variables: dict[str, Any],
    default_list_size: int,
) -> int:
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        op
        for op in operations
        if operation_name is None or (op.name is not None and op.name.value == operation_name)
    ]
    if not chosen:
        return 0
    op = chosen[0]
    root = schema.get_root_type(op.operation)
    if root is None:
        return 0

    def size(node: FieldNode, field_args: dict[str, Any]) -> int:
        for arg in node.arguments or ():
            if arg.name.value in SIZE_ARGUMENTS:
                value: object = None
                if isinstance(arg.value, IntValueNode):
                    value = int(arg.value.value)
                elif isinstance(arg.value, VariableNode):
                    value = variables.get(arg.value.name.value)
                if isinstance(value, int):
                    return max(1, value)
        for name in SIZE_ARGUMENTS:
            default = getattr(field_args.get(name), "default_value", None)
            if isinstance(default, int):
                return max(1, default)
        return default_list_size

    def walk(selection_set: SelectionSetNode | None, parent: Any, seen: frozenset[str]) -> int:
        if selection_set is None or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                name = sel.name.value
                field = parent.fields.get(name)
                if name.startswith("__") or field is None:
                    total += 1  # introspection is bounded by the schema's size
                    continue
                ftype = field.type
                if isinstance(ftype, GraphQLNonNull):
                    ftype = ftype.of_type
                multiplier = size(sel, field.args) if isinstance(ftype, GraphQLList) else 1
                total += multiplier * (1 + walk(sel.selection_set, get_named_type(ftype), seen))
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition
                target = schema.get_type(cond.name.value) if cond else parent
                total += walk(sel.selection_set, target, seen)
            elif isinstance(sel, FragmentSpreadNode):
                frag = fragments.get(sel.name.value)
                if frag is None or frag.name.value in seen:
                    continue
                target = schema.get_type(frag.type_condition.name.value)
                total += walk(frag.selection_set, target, seen | {frag.name.value})
        return total

    return walk(op.selection_set, root, frozenset())


class OneAuthMutation(ValidationRule):
    """At most one signup or login per request: aliases must not multiply password hashing or
    make twenty accounts in one go (each one is also counted by the sign-up limit)."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.seen = 0

    def enter_field(self, node: FieldNode, *_: object) -> None:
        parent = self.context.get_parent_type()
        schema = self.context.schema
        if parent is None or parent is not schema.mutation_type:
            return
        if node.name.value in AUTH_MUTATIONS:
            self.seen += 1
            if self.seen == 2:
                self.report_error(
                    GraphQLError(
                        "at most one signup or login per request",
                        node,
                        extensions={"code": "BAD_REQUEST"},
                    )
                )


# Live subscriptions per Client in this API process (each connection counts its own too).
_per_client: dict[int, int] = {}


@contextmanager
def subscription_slot(info: Info, client_id: int) -> Iterator[None]:
    """Held while a subscription runs; refused over the per-connection or per-Client cap."""
    settings = get_settings()
    ctx = info.context
    if ctx.subscriptions >= settings.max_subscriptions_per_connection:
        raise RateLimited(
            f"at most {settings.max_subscriptions_per_connection} subscriptions per connection",
            retry_after=1,
        )
    if _per_client.get(client_id, 0) >= settings.max_subscriptions_per_client:
        raise RateLimited(
            f"at most {settings.max_subscriptions_per_client} subscriptions per account",
            retry_after=1,
        )
    ctx.subscriptions += 1
    _per_client[client_id] = _per_client.get(client_id, 0) + 1
    try:
        yield
    finally:
        ctx.subscriptions -= 1
        left = _per_client.get(client_id, 1) - 1
        if left > 0:
            _per_client[client_id] = left
        else:
            _per_client.pop(client_id, None)
