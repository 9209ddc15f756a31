"""``POST /v2/events``: ingest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from meterline.api.deps import requires, services
from meterline.api.schemas import IngestResponse, errors
from meterline.auth import Principal, Scope

router = APIRouter(tags=["ingest"])

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": 'A JSON array of events, {"events": [...]}, or NDJSON; optionally gzip.',
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/v2/events",
    status_code=202,
    response_model=IngestResponse,
    responses=errors(400, 401, 403, 413, 415, 503),
    openapi_extra=_BODY_DOC,
    summary="Send events",
)
async def ingest_events(
    request: Request,
    principal: Principal = Depends(requires(Scope.EVENTS_WRITE, allow_ingest_key=True)),
) -> JSONResponse:
    """Accept up to 10,000 events (10 MB); answers once accepted events are durable.

    Invalid events are listed in ``rejected`` by index and never affect the others;
    events whose ``event_id`` was already accepted count as ``duplicates``.
    """
    svc = services(request)
    body = await request.body()
    result = await svc.ingest.ingest(
        principal.org_id,
        principal.retention_days,
        body,
        request.headers.get("content-type", ""),
        request.headers.get("content-encoding", ""),
    )
    return JSONResponse(result.as_json(), status_code=202)
