"""``POST /v2/query``: the metric query model over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from meterline.api.deps import requires, services
from meterline.api.routes.common import read_json
from meterline.api.schemas import QueryRequest, QueryResponse, errors
from meterline.auth import Principal, Scope
from meterline.query import DIMENSIONS, METRICS, parse_query

router = APIRouter(tags=["query"])


@router.post(
    "/v2/query",
    response_model=QueryResponse,
    responses=errors(400, 401, 403, 415),
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": QueryRequest.model_json_schema()}}
        }
    },
)
async def run_query(
    request: Request, principal: Principal = Depends(requires(Scope.ANALYTICS_READ))
) -> dict[str, Any]:
    """Metrics × dimensions × filters × range × granularity, for the caller's org only."""
    svc = services(request)
    query = parse_query(await read_json(request), now=svc.queries.now())
    # In a worker thread: a store query (which also waits for any insert holding the
    # store) must not stall the event loop, which acknowledges ingest and feeds streams.
    result = await run_in_threadpool(svc.queries.run, principal.org_id, query)
    return result.as_json()


@router.get("/v2/query/vocabulary", tags=["query"], responses=errors(401, 403))
def vocabulary(principal: Principal = Depends(requires(Scope.ANALYTICS_READ))) -> dict[str, Any]:
    """The metrics and dimensions queries may use, with units and descriptions."""
    return {
        "metrics": [
            {"name": m.name, "unit": m.unit, "description": m.description} for m in METRICS.values()
        ],
        "dimensions": [{"name": d.name, "description": d.description} for d in DIMENSIONS.values()],
    }
