"""Schema extensions: error codes for every error, never an internal message to the caller."""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from backend.db.config import DATABASE_UNAVAILABLE_MESSAGE, database_unavailable
from backend.errors import DISK_FULL_MESSAGE, PaasError, Unavailable, is_disk_full

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
