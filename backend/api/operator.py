"""Who is the platform operator (issue 16): the caller that sends the operator token of the
settings in the X-PaaSTech-Operator-Token header. There is no admin Client: a Client's login or
API token never makes it the operator, whoever it is."""

from __future__ import annotations

import hmac

from strawberry.types import Info

from backend.errors import Forbidden
from backend.settings import get_settings

OPERATOR_HEADER = "x-paastech-operator-token"
MIN_TOKEN_LENGTH = 32


def require_operator(info: Info) -> None:
    """Raise FORBIDDEN unless the request carries the operator token (compared in constant
    time); with no usable token configured, always."""
    expected = get_settings().operator_token
    if len(expected) < MIN_TOKEN_LENGTH:
        raise Forbidden(
            "this is the operator's API and it is off: set operator_token "
            f"(at least {MIN_TOKEN_LENGTH} characters) on the API server"
        )
    sent = info.context.request.headers.get(OPERATOR_HEADER, "")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("this is the operator's API: send the operator token")
