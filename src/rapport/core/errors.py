"""Domain errors raised by services; API and UI adapters translate them (A1)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule refused the operation. Carries what an API problem needs."""

    status_code = 400
    title = "Request refused"
    code = "domain_error"

    def __init__(self, message: str, *, field_errors: dict[str, list[str]] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.field_errors = field_errors or {}
        self.extra = extra


class NotAllowed(DomainError):
    status_code = 403
    title = "Not allowed"
    code = "not_allowed"


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"
    code = "conflict"


class StaleVersion(DomainError):
    status_code = 412
    title = "Precondition failed"
    code = "precondition_failed"
