"""``GET /v2/anomalies``: the history of anomalies found by continuous detection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from meterline.api.deps import requires, services
from meterline.api.schemas import errors
from meterline.auth import Principal, Scope
from meterline.errors import NotFoundError

router = APIRouter(tags=["anomalies"])
_READ = Depends(requires(Scope.ANALYTICS_READ))


@router.get("/v2/anomalies", responses=errors(400, 401, 403))
def list_anomalies(
    request: Request,
    principal: Principal = _READ,
    kind: str | None = Query(
        None, description="volume, error_rate, latency, geography or usage_pattern"
    ),
    metric: str | None = Query(None, description="requests, error_rate, latency_p95, …"),
    since: str | None = Query(None, description="ISO 8601; episodes still seen after it"),
    until: str | None = Query(None, description="ISO 8601; episodes started before it"),
    endpoint: str | None = Query(None, description="A route, e.g. /orders/:id"),
    consumer: str | None = Query(None, description="A consumer_id"),
    region: str | None = Query(None),
    page: int = Query(1),
    limit: int = Query(50),
) -> dict[str, Any]:
    """Anomaly episodes newest first: what (kind, metric, direction), where (route,
    consumer, region), how unusual (score in robust standard deviations), the expected
    band and the observed value at the peak, with ``pagination``."""
    return services(request).alerts.history.list(
        principal.org_id,
        kind=kind,
        metric=metric,
        since=since,
        until=until,
        endpoint=endpoint,
        consumer=consumer,
        region=region,
        page=page,
        limit=limit,
    )


@router.get("/v2/anomalies/{anomaly_id}", responses=errors(401, 403, 404))
def get_anomaly(anomaly_id: str, request: Request, principal: Principal = _READ) -> dict[str, Any]:
    """One anomaly episode."""
    found = services(request).alerts.history.get(principal.org_id, anomaly_id)
    if found is None:
        raise NotFoundError(
            f"anomaly {anomaly_id!r} was not found",
            code="ANOMALY_NOT_FOUND",
            details="List anomalies with GET /v2/anomalies.",
        )
    return found
