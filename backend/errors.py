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
    code = "VALIDATION"


class Conflict(PaasError):
    code = "CONFLICT"


class RateLimited(PaasError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "retryAfter": self.retry_after}


class Unavailable(PaasError):
    """A platform component the operation needs is not reachable."""

    code = "UNAVAILABLE"
