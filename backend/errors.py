"""Domain errors. Each carries the code the API reports in `extensions.code`."""

from __future__ import annotations


class PaasError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def extensions(self) -> dict[str, object]:
        ext: dict[str, object] = {"code": self.code}
        if self.field:
            ext["field"] = self.field
        return ext


class Unauthenticated(PaasError):
    code = "UNAUTHENTICATED"


class NotFound(PaasError):
    code = "NOT_FOUND"


class ValidationFailed(PaasError):
    """A bad input. ``field`` names it (the argument or input field), always: clients show the
    message next to that field."""

    code = "VALIDATION"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field)


class Conflict(PaasError):
    """The input is taken (a name, an email...). ``field`` names it, always."""

    code = "CONFLICT"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field)


class RateLimited(PaasError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "retryAfter": self.retry_after}


class NotVerified(PaasError):
    """A custom domain's proof of control was not found (backend/dnscheck.py)."""

    code = "NOT_VERIFIED"


class TooCostly(PaasError):
    """The operation would read more than a request may (backend/api/limits.py)."""

    code = "QUERY_TOO_COSTLY"

    def __init__(self, cost: int, budget: int) -> None:
        super().__init__(
            f"this request would cost {cost}, over the budget of {budget} per request; "
            "ask for fewer items (first:) or split it"
        )
        self.cost = cost
        self.budget = budget

    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "cost": self.cost, "budget": self.budget}


class ProcessUnhealthy(PaasError):
    """A restarted process did not come back healthy (issue 19: restart PROCESS[.N])."""

    code = "UNHEALTHY"


class Forbidden(PaasError):
    """The caller may not do this at all (the operator's node API, issue 16), whoever it is."""

    code = "FORBIDDEN"


class Unavailable(PaasError):
    """A platform component the operation needs is not reachable."""

    code = "UNAVAILABLE"


# The data dir's disk is full (issue 20): writes fail with this message and the code UNAVAILABLE
# (nothing is half written: SQLite is transactional, files are written to a temp name first).
DISK_FULL_MESSAGE = "the platform's disk is full; try again once space is freed"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or what caused it is "no space left" (a file or SQLite write)."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(current) or "No space left" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
