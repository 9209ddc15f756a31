"""The one place errors become HTTP responses, always in the documented error format.

``{"error": {"code", "message", "details", "request_id", "timestamp", "validation_errors"?}}``
— no stack trace, SQL or secret ever reaches a client; unexpected exceptions are logged
with their request id and answered ``500 INTERNAL_ERROR``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from meterline.errors import MeterlineError

log = logging.getLogger("meterline.api")

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "AUTH_TOKEN_MISSING",
    403: "AUTH_SCOPE_INSUFFICIENT",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMIT_EXCEEDED",
}


def request_id_of(request: Request) -> str:
    """The id given to this request by the request-id middleware."""
    return str(getattr(request.state, "request_id", "") or "")


def error_body(
    code: str,
    message: str,
    *,
    request_id: str,
    details: str | None = None,
    validation_errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the error object every error response carries."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "details": details,
        "request_id": request_id,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if validation_errors:
        error["validation_errors"] = validation_errors
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    request_id: str,
    details: str | None = None,
    validation_errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error response with the documented body."""
    body = error_body(
        code, message, request_id=request_id, details=details, validation_errors=validation_errors
    )
    return JSONResponse(body, status_code=status, headers=headers)


async def _meterline_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MeterlineError)
    if exc.status >= 500:
        log.error(
            "request %s failed: %s", request_id_of(request), exc.message, exc_info=exc.__cause__
        )
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 503:
        headers = {"Retry-After": "5"}
    extra = getattr(exc, "headers", None)  # e.g. the rate-limit headers of a quota refusal
    if isinstance(extra, dict):
        headers = {**(headers or {}), **extra}
    return error_response(
        exc.status,
        exc.code,
        exc.message,
        request_id=request_id_of(request),
        details=exc.details,
        validation_errors=exc.validation_errors,
        headers=headers,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = {
        404: f"no route {request.url.path}",
        405: f"method {request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    details = (
        "See /openapi.json for the available routes." if exc.status_code in (404, 405) else None
    )
    return error_response(
        exc.status_code,
        code,
        message,
        request_id=request_id_of(request),
        details=details,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        location = ".".join(
            str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path")
        )
        problems.append({"field": location or "body", "message": str(err.get("msg", "invalid"))})
    return error_response(
        400,
        "VALIDATION_ERROR",
        "the request parameters are not valid",
        request_id=request_id_of(request),
        details="; ".join(f"{p['field']}: {p['message']}" for p in problems),
        validation_errors=problems,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in request %s", request_id_of(request))
    return error_response(
        500,
        "INTERNAL_ERROR",
        "an unexpected error occurred",
        request_id=request_id_of(request),
        details="It has been logged with this request_id.",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the documented shape."""
    app.add_exception_handler(MeterlineError, _meterline_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
