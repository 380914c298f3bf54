"""Schema extensions: error codes for every error, never an internal message to the caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import (
    BREAK,
    ArgumentNode,
    DocumentNode,
    ObjectFieldNode,
    StringValueNode,
    VariableNode,
    Visitor,
    visit,
)
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from backend.db.config import DATABASE_UNAVAILABLE_MESSAGE, database_unavailable
from backend.errors import DISK_FULL_MESSAGE, PaasError, Unavailable, ValidationFailed, is_disk_full

log = logging.getLogger("paastech.api")


class ErrorCodes(MaskErrors):
    """Every error carries `extensions.code`; unexpected exceptions become INTERNAL, logged here."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [_with_code(error) for error in errors]


def _with_code(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GraphQLError) and original is not error:
        return _with_code(original)
    if original is not None and is_disk_full(original):
        log.error("disk full at %s: %s", error.path, original)
        original = Unavailable(DISK_FULL_MESSAGE)
    elif original is not None and database_unavailable(original):
        log.warning("database unavailable at %s: %s", error.path, original)
        original = Unavailable(DATABASE_UNAVAILABLE_MESSAGE)
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
    no name, key, value or hostname of the platform has a use for it. The error names the
    argument or input field that holds it."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None:
            # The document is walked only when its text can hold a NUL in a literal: a raw one
            # or a \u escape (\u0000, \u{0}); it was two walks per request (issue 17).
            query = ctx.query or ""
            maybe = "\x00" in query or "\\u" in query
            literal = _nul_in_literals(document) if maybe else None
            field = literal or _nul_in_variables(document, ctx.variables or {})
            if field is not None:
                err = ValidationFailed(f"{field} must not contain NUL characters", field=field)
                raise GraphQLError(err.message, extensions=err.extensions())
        yield


def _nul_in_value(value: object, name: str) -> str | None:
    """The innermost input field name under which a string holds NUL, or None."""
    if isinstance(value, str):
        return name if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _nul_in_value(key, name) or _nul_in_value(item, str(key))
            if found:
                return found
    if isinstance(value, list | tuple):
        for item in value:
            found = _nul_in_value(item, name)
            if found:
                return found
    return None


def _argument_names(document: DocumentNode) -> dict[str, str]:
    """Variable name -> the argument (or input field) it is passed as."""
    names: dict[str, str] = {}

    class Finder(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: object) -> None:
            if isinstance(node.value, VariableNode):
                names.setdefault(node.value.name.value, node.name.value)

        def enter_object_field(self, node: ObjectFieldNode, *_: object) -> None:
            if isinstance(node.value, VariableNode):
                names.setdefault(node.value.name.value, node.name.value)

    visit(document, Finder())
    return names


def _nul_in_variables(document: DocumentNode, variables: dict[str, object]) -> str | None:
    for variable, value in variables.items():
        if _nul_in_value(value, variable):
            # Only now the document is walked, for the argument's name to report.
            return _nul_in_value(value, _argument_names(document).get(variable, variable))
    return None


def _nul_in_literals(document: DocumentNode) -> str | None:
    found: str | None = None

    class Finder(Visitor):
        def enter_string_value(
            self,
            node: StringValueNode,
            key: object,
            parent: object,
            path: object,
            ancestors: list[object],
        ) -> object:
            nonlocal found
            if "\x00" not in node.value:
                return None
            found = "input"
            for ancestor in reversed([*ancestors, parent]):
                if isinstance(ancestor, ArgumentNode | ObjectFieldNode):
                    found = ancestor.name.value
                    break
            return BREAK

    visit(document, Finder())
    return found
