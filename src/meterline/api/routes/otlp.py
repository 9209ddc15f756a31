"""``POST /v1/traces``: OpenTelemetry traces (OTLP/HTTP, protobuf or JSON, gzip or not)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from meterline.api.deps import authenticate, services
from meterline.api.errors import request_id_of
from meterline.auth import Scope
from meterline.errors import MeterlineError
from meterline.ingest.otlp import (
    decode_traces,
    encode_response,
    encode_status,
    response_encoding,
)

log = logging.getLogger("meterline.api")

router = APIRouter(tags=["ingest"])

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An OTLP ExportTraceServiceRequest; server spans become request events.",
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "google.rpc.Status (protobuf for a protobuf request, JSON for JSON)",
    "properties": {
        "code": {"type": "integer", "description": "google.rpc.Code"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": text,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": _STATUS_SCHEMA},
        },
    }
    for status, text in {
        400: "Unreadable export request",
        401: "Missing or invalid credentials",
        403: "Credentials lack events:write",
        413: "Body too large",
        415: "Unsupported Content-Type or Content-Encoding",
        503: "Temporarily unavailable; retry after Retry-After seconds",
    }.items()
}


@router.post(
    "/v1/traces",
    responses=_ERRORS,
    openapi_extra=_BODY_DOC,
    summary="Send OpenTelemetry traces",
)
async def otlp_traces(request: Request) -> Response:
    """Map server spans to request events; answers an ``ExportTraceServiceResponse``.

    Spans that cannot become events are counted in ``partial_success.rejected_spans``
    with the first reasons in ``error_message``; the others are stored. The response is
    sent once the accepted events are durable. Errors are answered as OTLP/HTTP asks: a
    ``google.rpc.Status`` body, protobuf for a protobuf request, JSON for a JSON one.
    """
    try:
        return await _export(request)
    except MeterlineError as exc:
        if exc.status >= 500:
            log.error("OTLP export failed (%s): %s", request_id_of(request), exc.message)
        message = exc.message if not exc.details else f"{exc.message} ({exc.details})"
        encoding = response_encoding(request.headers.get("content-type", ""))
        headers: dict[str, str] = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.status == 503:
            headers["Retry-After"] = "5"
        extra = getattr(exc, "headers", None)
        if isinstance(extra, dict):
            headers.update(extra)
        return Response(
            encode_status(exc.status, message, encoding),
            status_code=exc.status,
            media_type=encoding,
            headers=headers,
        )


async def _export(request: Request) -> Response:
    principal = authenticate(request, allow_ingest_key=True)
    principal.require(Scope.EVENTS_WRITE)
    svc = services(request)
    decoded = decode_traces(
        await request.body(),
        content_type=request.headers.get("content-type", ""),
        content_encoding=request.headers.get("content-encoding", ""),
        max_bytes=svc.settings.max_body_bytes,
    )
    result = await svc.ingest.ingest_events(
        principal.org_id, principal.retention_days, decoded.items
    )
    reasons = "; ".join(f"span {r['index']}: {r['message']}" for r in result.rejected[:5])
    body = encode_response(len(result.rejected), reasons, decoded.encoding)
    return Response(body, status_code=200, media_type=decoded.encoding)
