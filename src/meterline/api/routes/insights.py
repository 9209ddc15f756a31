"""``/v2/insights/*``: anomalies found by the insight engine over the org's rollups."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from meterline.api.deps import requires, services
from meterline.api.schemas import errors
from meterline.auth import Principal, Scope
from meterline.insight.rollups import InsightService, InsightSettings

router = APIRouter(prefix="/v2/insights", tags=["insights"])


@router.get("/anomalies", responses=errors(400, 401, 403))
def anomalies(
    request: Request,
    principal: Principal = Depends(requires(Scope.ANALYTICS_READ)),
    sensitivity: float = Query(0.5, gt=0.0, le=1.0, description="Higher finds more."),
    window: int = Query(60, ge=1, le=1440, description="Minutes to examine, up to now."),
    kind: str | None = Query(
        None, description="volume, error_rate, latency, geography or usage_pattern"
    ),
) -> dict[str, Any]:
    """Volume spikes and drops, error-rate and p95 latency rises, region mix shifts and
    never-seen endpoints per consumer in the last ``window`` minutes, most unusual first."""
    svc = services(request)
    settings = InsightSettings(sensitivity=sensitivity, window=timedelta(minutes=window))
    found = InsightService(svc.queries).anomalies(principal.org_id, settings)
    if kind:
        found = [a for a in found if a.kind == kind]
    return {
        "data": [a.as_json() for a in found],
        "sensitivity": sensitivity,
        "window_minutes": window,
    }


@router.get("/forecast", responses=errors(400, 401, 403))
def forecast(
    request: Request,
    principal: Principal = Depends(requires(Scope.ANALYTICS_READ)),
    metric: str = Query("requests", description="A metric of the query vocabulary."),
    horizon: int = Query(24, ge=1, le=168, description="Hours ahead."),
) -> dict[str, Any]:
    """Hourly forecast with 80 % and 95 % prediction intervals: the same answer as
    ``GET /v2/forecast?granularity=hour`` (which also forecasts by day and filters)."""
    planning = services(request).planning
    return planning.forecast(principal.org_id, metric, horizon, "hour").as_json()
