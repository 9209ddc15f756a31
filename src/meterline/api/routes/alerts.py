"""``/v2/alerts``: alert rules, alerts and their lifecycle, feedback and sensitivity.

Reading needs ``analytics:read``; changing rules and acting on alerts needs
``admin:manage`` (the scope that changes an org's configuration, as for rate limits).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from meterline.api.deps import requires, services
from meterline.api.routes.common import read_json
from meterline.api.schemas import errors
from meterline.auth import Principal, Scope

router = APIRouter(tags=["alerts"])
_READ = Depends(requires(Scope.ANALYTICS_READ))
_WRITE = Depends(requires(Scope.ADMIN_MANAGE))


async def _optional_json(request: Request) -> dict[str, Any]:
    if not await request.body():
        return {}
    body = await read_json(request)
    return body if isinstance(body, dict) else {}


@router.get("/v2/alerts/rules", responses=errors(401, 403))
def list_rules(request: Request, principal: Principal = _READ) -> dict[str, Any]:
    """The org's threshold and anomaly rules."""
    return {"rules": services(request).alerts.rules.list(principal.org_id)}


@router.post("/v2/alerts/rules", status_code=201, responses=errors(400, 401, 403))
async def create_rule(request: Request, principal: Principal = _WRITE) -> dict[str, Any]:
    """A threshold rule ``{name, metric, condition: above|below, value, duration, window?,
    filters?, notify?}`` or an anomaly rule ``{name, type: "anomaly", kinds?, min_score?,
    notify?}``; ``notify`` is ``{"webhook": {"url", "secret"}, "email": [...]}``."""
    body = await read_json(request)
    return services(request).alerts.rules.create(principal.org_id, body)


@router.get("/v2/alerts/rules/{rule_id}", responses=errors(401, 403, 404))
def get_rule(rule_id: str, request: Request, principal: Principal = _READ) -> dict[str, Any]:
    """One rule (a webhook secret shows only as ``secret_set``)."""
    return services(request).alerts.rules.get(principal.org_id, rule_id)


@router.patch("/v2/alerts/rules/{rule_id}", responses=errors(400, 401, 403, 404))
async def update_rule(
    rule_id: str, request: Request, principal: Principal = _WRITE
) -> dict[str, Any]:
    """Change some fields of a rule; the others keep their values."""
    body = await read_json(request)
    return services(request).alerts.rules.update(principal.org_id, rule_id, body)


@router.delete("/v2/alerts/rules/{rule_id}", status_code=204, responses=errors(401, 403, 404))
def delete_rule(rule_id: str, request: Request, principal: Principal = _WRITE) -> Response:
    """Delete a rule; alerts it opened stay in the history."""
    services(request).alerts.rules.delete(principal.org_id, rule_id)
    return Response(status_code=204)


@router.get("/v2/alerts/sensitivity", responses=errors(401, 403))
def sensitivity(request: Request, principal: Principal = _READ) -> dict[str, Any]:
    """Each anomaly kind's sensitivity (0–1, higher finds more) and the feedback that
    moved it."""
    return {"data": services(request).alerts.book.sensitivity_report(principal.org_id)}


@router.get("/v2/alerts", responses=errors(400, 401, 403))
def list_alerts(
    request: Request,
    principal: Principal = _READ,
    status: str | None = Query(None, description="open, acknowledged or resolved"),
    source: str | None = Query(None, description="threshold, anomaly or stream"),
    kind: str | None = Query(None, description="An anomaly kind"),
    metric: str | None = Query(None),
    rule_id: str | None = Query(None),
    since: str | None = Query(None, description="ISO 8601; alerts still seen after it"),
    until: str | None = Query(None, description="ISO 8601; alerts opened before it"),
    page: int = Query(1),
    limit: int = Query(50),
) -> dict[str, Any]:
    """The org's alerts newest first, filtered, with ``pagination``."""
    return services(request).alerts.book.list(
        principal.org_id,
        status=status,
        source=source,
        kind=kind,
        metric=metric,
        rule_id=rule_id,
        since=since,
        until=until,
        page=page,
        limit=limit,
    )


@router.get("/v2/alerts/{alert_id}", responses=errors(401, 403, 404))
def get_alert(alert_id: str, request: Request, principal: Principal = _READ) -> dict[str, Any]:
    """One alert with its notifications and their delivery status."""
    return services(request).alerts.get(principal.org_id, alert_id)


@router.post("/v2/alerts/{alert_id}/acknowledge", responses=errors(401, 403, 404, 409))
def acknowledge(alert_id: str, request: Request, principal: Principal = _WRITE) -> dict[str, Any]:
    """Mark an open alert as being handled (409 ``ALERT_STATE_CONFLICT`` otherwise)."""
    return services(request).alerts.acknowledge(principal.org_id, alert_id, principal.subject)


@router.post("/v2/alerts/{alert_id}/resolve", responses=errors(400, 401, 403, 404, 409))
async def resolve(alert_id: str, request: Request, principal: Principal = _WRITE) -> dict[str, Any]:
    """Close an alert, optionally with ``{"note": "..."}``."""
    body = await _optional_json(request)
    return services(request).alerts.resolve(
        principal.org_id, alert_id, principal.subject, body.get("note")
    )


@router.post("/v2/alerts/{alert_id}/feedback", responses=errors(400, 401, 403, 404, 409))
async def feedback(
    alert_id: str, request: Request, principal: Principal = _WRITE
) -> dict[str, Any]:
    """``{"verdict": "true_positive" | "false_positive", "comment"?}``; on an anomaly alert
    a false positive lowers that kind's sensitivity and a true positive raises it."""
    body = await read_json(request)
    if not isinstance(body, dict):
        body = {}
    return services(request).alerts.book.feedback(
        principal.org_id, alert_id, body.get("verdict"), body.get("comment"), principal.subject
    )
