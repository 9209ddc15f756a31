"""The overview page at ``/``, its refreshable panel, and cookie login with client credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from meterline.api.deps import services
from meterline.auth import Principal, Scope
from meterline.dashboard.charts import line_chart
from meterline.errors import MeterlineError, ValidationError
from meterline.query import MetricQuery, presets, resolve_range
from meterline.query.presets import display_value

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
COOKIE = "meterline_session"
RANGES = ("15m", "1h", "6h", "24h", "7d", "30d")


def _principal(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = services(request).auth.principal_from_token(token)
    except MeterlineError:
        return None
    return principal if Scope.ANALYTICS_READ.value in principal.scopes else None


def _panel_context(request: Request, principal: Principal) -> dict[str, Any]:
    svc = services(request)
    chosen = request.query_params.get("range", "1h")
    if chosen not in RANGES:
        chosen = "1h"
    tr = resolve_range(range_=chosen, start=None, end=None, now=svc.queries.now())
    org = principal.org_id
    kpis = presets.overview(svc.queries, org, tr, ())
    granularity = presets.default_granularity(tr)
    series = svc.queries.run(
        org,
        MetricQuery(
            metrics=("requests", "errors", "latency_p50", "latency_p95"),
            time_range=tr,
            granularity=granularity,
        ),
    ).data
    stamps = [r["timestamp"] for r in series]
    traffic = line_chart(
        stamps,
        {"requests": [r["requests"] for r in series], "errors": [r["errors"] for r in series]},
        title=f"Requests per {granularity}",
    )
    latency = line_chart(
        stamps,
        {"p50": [r["latency_p50"] for r in series], "p95": [r["latency_p95"] for r in series]},
        title="Latency",
        unit="ms",
    )
    top_endpoints = presets.endpoints(
        svc.queries, org, tr, (), sort="requests", order="desc", limit=10
    )
    top_consumers = presets.consumers(
        svc.queries, org, tr, (), sort="requests", order="desc", limit=10, offset=0
    )
    return {
        "range": chosen,
        "ranges": RANGES,
        "kpis": kpis,
        "fmt": display_value,
        "traffic_chart": traffic,
        "latency_chart": latency,
        "endpoints": top_endpoints["data"],
        "consumers": top_consumers["data"],
        "consumer_total": top_consumers["pagination"]["total"],
    }


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request) -> Response:
    """The overview dashboard; sends visitors without a session to the login form."""
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    context = _panel_context(request, principal)
    return templates.TemplateResponse(
        request, "overview.html", {**context, "org_id": principal.org_id}
    )


@router.get("/dashboard/panel", response_class=HTMLResponse)
def overview_panel(request: Request) -> Response:
    """The refreshable part of the overview page (fetched every few seconds)."""
    principal = _principal(request)
    if principal is None:
        return Response(status_code=401)
    return templates.TemplateResponse(request, "panel.html", _panel_context(request, principal))


@router.post("/dashboard/stream-ticket")
def stream_ticket(request: Request) -> Response:
    """A single-use ``/v2/stream`` ticket for the signed-in page, so the session token
    never appears in a WebSocket URL (or in a log line)."""
    principal = _principal(request)
    token = request.cookies.get(COOKIE)
    if principal is None or token is None:
        return Response(status_code=401)
    svc = services(request)
    expires = float(svc.auth.signer.verify(token, now=svc.auth.clock()).expires_at)
    ticket, _ = svc.tickets.issue(principal, expires)
    return JSONResponse({"ticket": ticket}, headers={"Cache-Control": "no-store"})


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    """The sign-in form (client id and secret of a client with ``analytics:read``)."""
    return templates.TemplateResponse(
        request,
        "login.html",
        {"client_id": request.query_params.get("client_id", ""), "error": None},
    )


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Exchange client credentials for a session cookie holding an access token."""
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    client_id = form.get("client_id", "")
    try:
        issued = services(request).auth.issue_token(
            client_id, form.get("client_secret", ""), Scope.ANALYTICS_READ.value
        )
    except (MeterlineError, ValidationError) as exc:
        return templates.TemplateResponse(
            request, "login.html", {"client_id": client_id, "error": exc.message}, status_code=401
        )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        issued["access_token"],
        max_age=issued["expires_in"],
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/logout")
def logout() -> Response:
    """Drop the session cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
