"""``/v2/admin/ratelimits``: effective limits, persisted overrides and exemptions.

Any admin may read its own org's limits; only an operator admin may change limits or
issue exemptions (an org raising its own limits would defeat the plans).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from meterline.api.deps import requires, services
from meterline.api.routes.common import read_json
from meterline.api.schemas import errors
from meterline.auth import Principal, Scope
from meterline.errors import ScopeError, ValidationError
from meterline.ratelimit.plans import OVERRIDE_FIELDS

router = APIRouter(prefix="/v2/admin/ratelimits", tags=["admin"])
admin = requires(Scope.ADMIN_MANAGE)
PRECEDENCE = "consumer override > org override > config file plan > built-in plan defaults"
MAX_EXEMPTION_SECONDS = 24 * 3600


def _org(principal: Principal, org: Any, *, write: bool) -> str:
    org = org or principal.org_id
    if not isinstance(org, str):
        raise ValidationError("'org_id' must be a string")
    if write and not principal.operator:
        raise ScopeError("only an operator admin may change rate limits")
    if org != principal.org_id and not principal.operator:
        raise ScopeError("only an operator admin may see another org's limits")
    return org


def _view(request: Request, org_id: str, consumer_id: str | None) -> dict[str, Any]:
    svc = services(request)
    plan = str(svc.auth.find_org(org_id)["plan"])
    return {
        "org_id": org_id,
        "consumer_id": consumer_id,
        "effective": svc.ratelimits.effective(plan, org_id, consumer_id),
        "overrides": svc.ratelimits.overrides_of(org_id),
        "precedence": PRECEDENCE,
    }


@router.get("", responses=errors(401, 403, 404))
async def get_limits(request: Request, principal: Principal = Depends(admin)) -> dict[str, Any]:
    """The org's effective limits (``?org_id=&consumer_id=``) and its overrides."""
    org = _org(principal, request.query_params.get("org_id"), write=False)
    return _view(request, org, request.query_params.get("consumer_id"))


@router.put("", responses=errors(400, 401, 403, 404))
async def put_override(request: Request, principal: Principal = Depends(admin)) -> dict[str, Any]:
    """Set ``{org_id, consumer_id?, requests_per_hour?, burst?, reports_per_day?}``
    (``reports_per_day: null`` is unlimited); persisted, effective at once."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    org = _org(principal, body.get("org_id"), write=True)
    services(request).auth.find_org(org)
    consumer = body.get("consumer_id")
    if consumer is not None and not isinstance(consumer, str):
        raise ValidationError("'consumer_id' must be a string")
    fields = {k: v for k, v in body.items() if k not in ("org_id", "consumer_id")}
    if not fields:
        raise ValidationError("give at least one of " + ", ".join(OVERRIDE_FIELDS))
    services(request).ratelimits.set_override(org, consumer, fields)
    return _view(request, org, consumer)


@router.delete("", responses=errors(401, 403))
async def delete_override(
    request: Request, principal: Principal = Depends(admin)
) -> dict[str, Any]:
    """Remove the override of ``?org_id=`` (and ``&consumer_id=``)."""
    org = _org(principal, request.query_params.get("org_id"), write=True)
    consumer = request.query_params.get("consumer_id")
    removed = services(request).ratelimits.remove_override(org, consumer)
    return {"org_id": org, "consumer_id": consumer, "removed": removed}


@router.post("/exemptions", status_code=201, responses=errors(400, 401, 403))
async def issue_exemption(
    request: Request, principal: Principal = Depends(admin)
) -> dict[str, Any]:
    """Issue a signed exemption ``{subject, rules?, match?, methods?, ttl_seconds?}`` to send
    as ``X-RateLimit-Exemption``; it skips only the named rules, on matching paths, until
    it expires (at most a day)."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("subject"), str):
        raise ValidationError("'subject' is required", code="PARAMETER_REQUIRED")
    _org(principal, None, write=True)
    ttl = body.get("ttl_seconds", 300)
    if not isinstance(ttl, int | float) or not 0 < ttl <= MAX_EXEMPTION_SECONDS:
        raise ValidationError(f"'ttl_seconds' must be in (0, {MAX_EXEMPTION_SECONDS}]")
    rules = tuple(str(r) for r in body.get("rules", ["*"]))
    methods = tuple(str(m) for m in body.get("methods", []))
    svc = services(request)
    token = svc.ratelimits.exemptions.issue(
        body["subject"], rules=rules, match=str(body.get("match", "*")), methods=methods, ttl=ttl
    )
    return {
        "token": token,
        "expires_at": svc.ratelimits.clock() + ttl,
        "header": "X-RateLimit-Exemption",
    }
