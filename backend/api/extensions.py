"""Schema extensions: error codes for every error, never an internal message to the caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import BREAK, DocumentNode, StringValueNode, Visitor, visit
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from backend.errors import PaasError

log = logging.getLogger("paastech.api")


class ErrorCodes(MaskErrors):
    """Every error carries `extensions.code`; unexpected exceptions become INTERNAL, logged here."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [_with_code(error) for error in errors]


def _with_code(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GraphQLError) and original is not error:
        return _with_code(original)
    if isinstance(original, PaasError):
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=original.extensions(),
        )
    if original is None:
        # Syntax, validation and limit errors from graphql-core: the message is safe to show.
        code = (error.extensions or {}).get("code") or "BAD_REQUEST"
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={**(error.extensions or {}), "code": code},
        )
    log.error("internal error at %s", error.path, exc_info=original)
    return GraphQLError(
        "internal error; it has been logged",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL"},
    )


class RejectNul(SchemaExtension):
    """Refuses text containing NUL (U+0000), in variables or literals, before anything runs.

    PostgreSQL cannot store or even compare it (an error deep in the driver, found by the fuzzer);
    no name, key, value or hostname of the platform has a use for it."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if _has_nul(ctx.variables) or (
            ctx.graphql_document is not None and _nul_in_literals(ctx.graphql_document)
        ):
            raise GraphQLError(
                "text must not contain NUL characters (\\u0000)", extensions={"code": "VALIDATION"}
            )
        yield


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _nul_in_literals(document: DocumentNode) -> bool:
    found = False

    class Finder(Visitor):
        def enter_string_value(self, node: StringValueNode, *_: object) -> object:
            nonlocal found
            if "\x00" in node.value:
                found = True
                return BREAK
            return None

    visit(document, Finder())
    return found
