"""``/v2/analytics/*``: the preset analytics views, all computed by the query model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from meterline.api.deps import requires, services
from meterline.api.routes.common import read_json, time_range
from meterline.api.schemas import (
    Consumers,
    Endpoints,
    Overview,
    Timeseries,
    VisualizationRequest,
    VisualizationResponse,
    errors,
)
from meterline.auth import Principal, Scope
from meterline.errors import ValidationError
from meterline.query import Filter, parse_query, presets, resolve_range
from meterline.query.presets import equality_filters

router = APIRouter(prefix="/v2/analytics", tags=["analytics"])
reader = requires(Scope.ANALYTICS_READ)
_RANGE_DOC = "1h, 24h, 7d, 30d … (or give start/end as ISO 8601)"


@router.get("/overview", response_model=Overview, responses=errors(400, 401, 403))
def overview(
    request: Request,
    principal: Principal = Depends(reader),
    range_: str | None = Query(None, alias="range", description=_RANGE_DOC),
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """Totals, rate, latency percentiles, error rate and status mix for a range.

    Any dimension name in the query string (``route``, ``status_class`` …) filters.
    """
    svc = services(request)
    filters = equality_filters(request.query_params)
    return presets.overview(svc.queries, principal.org_id, time_range(request), filters)


@router.get("/timeseries", response_model=Timeseries, responses=errors(400, 401, 403))
def timeseries(
    request: Request,
    principal: Principal = Depends(reader),
    metric: str | None = Query(None, description="a metric of the vocabulary"),
    granularity: str | None = Query(None, description="minute, hour or day"),
    range_: str | None = Query(None, alias="range", description=_RANGE_DOC),
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """A gap-filled series of one metric; dimension names in the query string filter."""
    svc = services(request)
    filters = equality_filters(request.query_params)
    return presets.timeseries(
        svc.queries, principal.org_id, time_range(request), metric, granularity, filters
    )


@router.get("/endpoints", response_model=Endpoints, responses=errors(400, 401, 403))
def endpoints(
    request: Request,
    principal: Principal = Depends(reader),
    sort: str = Query(
        "requests", description="requests, error_rate, avg/p95/p99_latency_ms, route"
    ),
    order: str = Query("desc", description="asc or desc"),
    limit: int = Query(20, ge=1, le=1000),
    range_: str | None = Query(None, alias="range", description=_RANGE_DOC),
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """Top endpoints (method and route) by volume, errors or latency."""
    svc = services(request)
    filters = equality_filters(request.query_params)
    return presets.endpoints(
        svc.queries,
        principal.org_id,
        time_range(request),
        filters,
        sort=sort,
        order=order,
        limit=limit,
    )


@router.get("/consumers", response_model=Consumers, responses=errors(400, 401, 403))
def consumers(
    request: Request,
    principal: Principal = Depends(reader),
    sort: str = Query("requests"),
    order: str = Query("desc"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    range_: str | None = Query(None, alias="range", description=_RANGE_DOC),
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """Usage per consumer: requests, errors, bandwidth, first and last seen; paged."""
    svc = services(request)
    filters = equality_filters(request.query_params)
    return presets.consumers(
        svc.queries,
        principal.org_id,
        time_range(request),
        filters,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )


@router.get("/errors", responses=errors(400, 401, 403))
def recent_errors(
    request: Request,
    principal: Principal = Depends(reader),
    limit: int = Query(50, ge=1, le=500),
    range_: str | None = Query(None, alias="range", description=_RANGE_DOC),
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """The most recent error events (4xx and 5xx), newest first: time, method, route,
    path, status, latency, consumer, region and error text. Dimension names in the
    query string filter (``?route=/orders/:id&consumer_id=acme``)."""
    svc = services(request)
    filters = equality_filters(request.query_params)
    return presets.recent_errors(
        svc.queries, principal.org_id, time_range(request), filters, limit=limit
    )


@router.post(
    "/visualization",
    response_model=VisualizationResponse,
    responses=errors(400, 401, 403, 415),
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": VisualizationRequest.model_json_schema()}}
        }
    },
)
async def visualization(request: Request, principal: Principal = Depends(reader)) -> dict[str, Any]:
    """Chart-ready data points ``{timestamp, value, display_value}`` for one metric."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    svc = services(request)
    window = body.get("time_range", "7d")
    if isinstance(window, dict):
        tr = resolve_range(
            range_=None, start=window.get("start"), end=window.get("end"), now=svc.queries.now()
        )
    elif isinstance(window, str):
        tr = resolve_range(range_=window, start=None, end=None, now=svc.queries.now())
    else:
        raise ValidationError("'time_range' must be like '7d' or {start, end}")
    fmt = body.get("format", "chart_ready")
    if fmt != "chart_ready":
        raise ValidationError("'format' must be chart_ready")
    filters: tuple[Filter, ...] = ()
    if body.get("filters"):
        filters = parse_query(
            {"metrics": ["requests"], "filters": body["filters"], "range": "1h"},
            now=svc.queries.now(),
        ).filters
    aggregation = body.get("aggregation")
    # Store queries run in a worker thread, off the event loop (see run_query).
    return await run_in_threadpool(
        presets.visualization,
        svc.queries,
        principal.org_id,
        tr,
        body.get("metric"),
        aggregation if isinstance(aggregation, str) else None,
        filters,
    )
