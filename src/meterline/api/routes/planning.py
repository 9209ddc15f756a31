"""Forecasting and planning routes: ``/v2/forecast``, ``/v2/capacity``, ``/v2/scenarios``
and ``/v2/analytics/costs/projections``; each calls :class:`PlanningService`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from meterline.api.deps import requires, services
from meterline.api.routes.common import read_json
from meterline.api.schemas import errors
from meterline.auth import Principal, Scope
from meterline.planning import PEAK_RPM
from meterline.query.presets import equality_filters

router = APIRouter(prefix="/v2", tags=["planning"])
reader = requires(Scope.ANALYTICS_READ)
DEFAULT_HORIZON = {"hour": 24, "day": 30}


@router.get("/forecast", responses=errors(400, 401, 403))
def forecast(
    request: Request,
    principal: Principal = Depends(reader),
    metric: str = Query(
        "requests", description=f"A metric of the query vocabulary, or {PEAK_RPM}."
    ),
    granularity: str = Query("hour", description="hour (daily and weekly seasons) or day."),
    horizon: int | None = Query(
        None, ge=1, description="Buckets ahead: up to 168 hours or 365 days (24 h / 30 d)."
    ),
) -> dict[str, Any]:
    """Point forecast with calibrated 80 % and 95 % prediction intervals.

    The model is chosen per series by its recent out-of-sample errors; intervals are
    conformal, from the chosen model's recent forecast errors. Dimension names in the
    query string filter (``?route=/orders/:id``).
    """
    filters = equality_filters(request.query_params)
    steps = horizon or DEFAULT_HORIZON.get(granularity, 24)
    result = services(request).planning.forecast(
        principal.org_id, metric, steps, granularity, filters
    )
    body = result.as_json()
    body["filters"] = [{"field": f.field, "op": f.op, "value": f.value} for f in filters]
    return body


@router.get("/capacity", responses=errors(400, 401, 403))
def capacity(
    request: Request,
    principal: Principal = Depends(reader),
    granularity: str = Query("day", description="day (up to 365 ahead) or hour (up to 168)."),
    horizon: int | None = Query(None, ge=1, description="Buckets ahead (30 days / 24 hours)."),
) -> dict[str, Any]:
    """Current headroom under the configured capacity (peak requests per minute) and when
    the forecast peak crosses it: expected (point), likely (upper 80 %), possible
    (upper 95 %)."""
    steps = horizon or DEFAULT_HORIZON.get(granularity, 30)
    return services(request).planning.capacity(principal.org_id, steps, granularity)


@router.put("/capacity", responses=errors(400, 401, 403))
async def set_capacity(
    request: Request, principal: Principal = Depends(requires(Scope.ADMIN_MANAGE))
) -> dict[str, Any]:
    """Set ``capacity_rpm`` (peak requests per minute the API is provisioned for) and/or
    ``cost_per_million_requests`` (USD); ``null`` unsets one."""
    body = await read_json(request)
    planning = services(request).planning
    updated = await run_in_threadpool(planning.update_settings, principal.org_id, body)
    return updated.as_json()


@router.post("/scenarios", responses=errors(400, 401, 403, 415))
async def scenario(request: Request, principal: Principal = Depends(reader)) -> dict[str, Any]:
    """What-if multipliers over date ranges applied to the daily forecasts: projected
    requests, peak requests per minute, capacity headroom and cost, per day and in sum."""
    body = await read_json(request)
    # forecasting takes a moment: keep it off the event loop
    return await run_in_threadpool(services(request).planning.scenario, principal.org_id, body)


@router.get("/analytics/costs/projections", responses=errors(400, 401, 403))
def cost_projections(request: Request, principal: Principal = Depends(reader)) -> dict[str, Any]:
    """LLM cost and tokens for the next month, quarter and year from a daily forecast
    (weekly season, damped trend), with 80 % and 95 % intervals. Dimension names in the
    query string filter (``?model=gpt-4o``)."""
    filters = equality_filters(request.query_params)
    return services(request).planning.cost_projections(principal.org_id, filters)
