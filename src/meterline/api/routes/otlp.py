"""``POST /v1/traces``: OpenTelemetry traces (OTLP/HTTP, protobuf or JSON, gzip or not)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from meterline.api.deps import requires, services
from meterline.api.schemas import errors
from meterline.auth import Principal, Scope
from meterline.ingest.otlp import decode_traces, encode_response

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


@router.post(
    "/v1/traces",
    responses=errors(400, 401, 403, 413, 415, 503),
    openapi_extra=_BODY_DOC,
    summary="Send OpenTelemetry traces",
)
async def otlp_traces(
    request: Request,
    principal: Principal = Depends(requires(Scope.EVENTS_WRITE, allow_ingest_key=True)),
) -> Response:
    """Map server spans to request events; answers an ``ExportTraceServiceResponse``.

    Spans that cannot become events are counted in ``partial_success.rejected_spans``
    with the first reasons in ``error_message``; the others are stored. The response is
    sent once the accepted events are durable.
    """
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
