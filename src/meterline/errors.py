"""Meterline's own error types, one root, each carrying the public error code.

Capability packages raise these; ``meterline.api.errors`` maps them to HTTP responses in
one place, so a client only ever sees the documented error format.
"""

from __future__ import annotations

from typing import Any


class MeterlineError(Exception):
    """Root of every error Meterline raises on purpose.

    ``code`` is the public error code (``VALIDATION_ERROR`` …), ``status`` the HTTP status
    that fits it, ``details`` a short extra hint and ``validation_errors`` a list of
    ``{field, message}`` objects when the fault is in named input fields.
    """

    code = "INTERNAL_ERROR"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        details: str | None = None,
        validation_errors: list[dict[str, Any]] | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.validation_errors = validation_errors
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep code, status and details when the error crosses a process boundary.
        return (
            _rebuild,
            (
                type(self),
                self.message,
                self.details,
                self.validation_errors,
                self.code,
                self.status,
            ),
        )


def _rebuild(
    cls: type[MeterlineError],
    message: str,
    details: str | None,
    validation_errors: list[dict[str, Any]] | None,
    code: str,
    status: int,
) -> MeterlineError:
    return cls(
        message, details=details, validation_errors=validation_errors, code=code, status=status
    )


class ValidationError(MeterlineError):
    """Input that does not fit the documented shape."""

    code = "VALIDATION_ERROR"
    status = 400


class DateFormatError(ValidationError):
    """A date or time that is not ISO 8601 (or epoch milliseconds where allowed)."""

    code = "DATE_FORMAT_INVALID"


class ParameterRequiredError(ValidationError):
    """A required parameter is missing."""

    code = "PARAMETER_REQUIRED"


class AuthError(MeterlineError):
    """Missing or invalid credentials."""

    code = "AUTH_TOKEN_INVALID"
    status = 401


class AuthMissingError(AuthError):
    """No credentials were sent at all."""

    code = "AUTH_TOKEN_MISSING"


class ScopeError(MeterlineError):
    """Valid credentials that lack the scope a route needs."""

    code = "AUTH_SCOPE_INSUFFICIENT"
    status = 403


class NotFoundError(MeterlineError):
    """A named resource that does not exist (or belongs to another org)."""

    code = "NOT_FOUND"
    status = 404


class ConflictError(MeterlineError):
    """The request conflicts with existing state (for example a duplicate name)."""

    code = "CONFLICT"
    status = 409


class PayloadTooLargeError(MeterlineError):
    """A request body over the documented size or count limit."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class UnsupportedMediaTypeError(MeterlineError):
    """A body in a content type the route does not read."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415


class RateLimitExceededError(MeterlineError):
    """Too many requests (or messages) within a limit's window; retry later."""

    code = "RATE_LIMIT_EXCEEDED"
    status = 429


class QuotaExceededError(RateLimitExceededError):
    """A plan's allowance (reports per day, connections, subscriptions) is used up."""

    code = "QUOTA_EXCEEDED"


class ConfigurationError(MeterlineError):
    """Meterline was started with settings that cannot work; raised at start-up."""

    code = "CONFIGURATION_ERROR"


class StoreError(MeterlineError):
    """The analytics store failed; the driver's own error is chained, never shown."""

    code = "STORE_UNAVAILABLE"
    status = 503


class QueryTimeoutError(StoreError):
    """A query ran past its time budget."""

    code = "QUERY_TIMEOUT"
    status = 504
