"""Rate limiting on Meterline's own API: who a request is, and recording every refusal."""

from __future__ import annotations

import logging
import secrets

import msgspec
from fastapi import FastAPI
from starlette.types import Scope

from meterline.api.services import Services
from meterline.auth import is_ingest_key
from meterline.errors import MeterlineError
from meterline.events import RawEvent
from meterline.plans import plan_limits
from meterline.ratelimit.aio import RateLimiter
from meterline.ratelimit.decision import Decision
from meterline.ratelimit.exemptions import ExemptionSigner
from meterline.ratelimit.middleware import RateLimitMiddleware
from meterline.ratelimit.rules import Identity

log = logging.getLogger("meterline.api")

LIMITED_PREFIXES = ("/v2/", "/oauth/")
"""Paths the limiter guards; health, metrics and the dashboard's static files are free."""


def _services(scope: Scope) -> Services | None:
    app = scope.get("app")
    found = getattr(getattr(app, "state", None), "services", None)
    return found if isinstance(found, Services) else None


def _limiter(scope: Scope) -> RateLimiter | None:
    svc = _services(scope)
    if svc is None or not scope["path"].startswith(LIMITED_PREFIXES) or not svc.ratelimits.enabled:
        return None
    return svc.ratelimits.limiter


def _exemptions(scope: Scope) -> ExemptionSigner | None:
    svc = _services(scope)
    return svc.ratelimits.exemptions if svc is not None else None


def _credential(scope: Scope) -> tuple[str, str] | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer" and token.strip():
                # The events routes take an ingest key as a bearer credential too.
                token = token.strip()
                return ("key" if is_ingest_key(token) else "token"), token
        elif name == b"x-api-key":
            return "key", value.decode("latin-1")
    return None


async def identify(scope: Scope) -> Identity:
    """The caller's org, client and plan from valid credentials; else the client IP."""
    svc = _services(scope)
    assert svc is not None
    path, method = scope["path"], scope["method"]
    found = _credential(scope)
    if found is not None:
        kind, token = found
        try:
            principal = (
                svc.auth.principal_from_token(token)
                if kind == "token"
                else svc.auth.principal_from_ingest_key(token)
            )
        except MeterlineError:
            principal = None  # the route answers 401; the request counts against its IP
        if principal is not None:
            return Identity(
                org=principal.org_id,
                consumer=principal.subject,
                endpoint=path,
                method=method,
                plan=principal.plan,
            )
    client = scope.get("client")
    return Identity(ip=client[0] if client else "unknown", endpoint=path, method=method)


async def record_refusal(scope: Scope, identity: Identity, decision: Decision) -> None:
    """Count the refusal and store it as a request event with status 429, so which
    customers hit their limits is a query (``status=429`` by ``consumer_id``)."""
    svc = _services(scope)
    if svc is None:
        return
    rule = decision.rule.name if decision.rule is not None else ""
    svc.ratelimits.refused.labels(rule, decision.code).inc()
    if identity.org is None or identity.plan is None:
        return
    client = scope.get("client")
    event = {
        "event_id": f"rl_{secrets.token_hex(12)}",
        "type": "request",
        "timestamp": int(svc.ratelimits.clock() * 1000),
        "method": scope["method"],
        "path": scope["path"],
        "status": 429 if decision.code != "RATE_LIMITER_UNAVAILABLE" else 503,
        "latency_ms": 0,
        "consumer_id": identity.consumer,
        "api_token_id": identity.consumer,
        "client_ip": client[0] if client else "",
        "properties": {"rate_limit_rule": rule, "error_code": decision.code},
    }
    await svc.ingest.ingest_events(
        identity.org,
        plan_limits(identity.plan).retention_days,
        [msgspec.convert(event, RawEvent)],
    )


def install_rate_limiting(app: FastAPI) -> None:
    """Put the limiter in front of the API (inside the request-id middleware)."""
    app.add_middleware(
        RateLimitMiddleware,
        limiter=_limiter,
        identify=identify,
        on_denied=record_refusal,
        exemptions=_exemptions,
    )
