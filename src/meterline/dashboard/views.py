"""The dashboard's pages, its session, and cookie login with client credentials.

Pages are shells: every number on them comes from ``/v2/stream`` and the REST API,
which the page's modules call with the session's bearer token (``POST
/dashboard/session``), so the dashboard sees exactly what any API client would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from meterline.api.deps import services
from meterline.auth import Principal, Scope
from meterline.errors import MeterlineError

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
COOKIE = "meterline_session"
RANGES = ("15m", "1h", "6h", "24h", "7d", "30d")
DASHBOARD_SCOPES = (
    Scope.ANALYTICS_READ.value,
    Scope.REPORTS_READ.value,
    Scope.REPORTS_WRITE.value,
)
"""What a sign-in asks for: the least the pages need; reports pages work when the
client holds the reports scopes and say so when it does not."""


def _principal(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = services(request).auth.principal_from_token(token)
    except MeterlineError:
        return None
    return principal if Scope.ANALYTICS_READ.value in principal.scopes else None


def _range(request: Request) -> str:
    chosen = request.query_params.get("range", "1h")
    return chosen if chosen in RANGES else "1h"


def _page(
    request: Request, template: str, page: str, extra: dict[str, Any] | None = None
) -> Response:
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    context = {
        "page": page,
        "org_id": principal.org_id,
        "range": _range(request),
        "ranges": RANGES,
        "can_read_reports": Scope.REPORTS_READ.value in principal.scopes,
        **(extra or {}),
    }
    # Inside <script>, so no character of a route or id may close the element.
    context["page_json"] = (
        json.dumps({k: v for k, v in context.items() if k != "ranges"})
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    params = dict(request.query_params)

    def range_query(value: str) -> str:
        return urlencode({**params, "range": value})

    context["range_query"] = range_query
    return templates.TemplateResponse(request, template, context)


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request) -> Response:
    """The overview dashboard; sends visitors without a session to the login form."""
    return _page(request, "overview.html", "overview")


@router.get("/endpoint", response_class=HTMLResponse)
def endpoint_page(request: Request) -> Response:
    """One endpoint (``?method=GET&route=/orders/:id``): its live figures, charts,
    consumers and recent errors."""
    route = request.query_params.get("route", "")
    method = request.query_params.get("method", "")
    if not route:
        return RedirectResponse("/", status_code=303)
    title = f"{method} {route}".strip()
    return _page(
        request,
        "drilldown.html",
        "endpoint",
        {"kind": "endpoint", "route": route, "method": method, "title": title},
    )


@router.get("/consumer", response_class=HTMLResponse)
def consumer_page(request: Request) -> Response:
    """One consumer (``?consumer_id=acme``): its live figures, charts, endpoints and
    recent errors."""
    consumer = request.query_params.get("consumer_id", "")
    if not consumer:
        return RedirectResponse("/", status_code=303)
    return _page(
        request,
        "drilldown.html",
        "consumer",
        {"kind": "consumer", "consumer_id": consumer, "title": consumer},
    )


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request) -> Response:
    """Reports: list with status and progress, generate from a template, downloads,
    and schedules."""
    principal = _principal(request)
    can_write = principal is not None and Scope.REPORTS_WRITE.value in principal.scopes
    return _page(request, "reports.html", "reports", {"can_write_reports": can_write})


@router.post("/dashboard/session")
def session(request: Request) -> Response:
    """The signed-in page's bearer token, scopes and expiry, for its REST and stream
    calls. Same-origin only: the cookie is ``SameSite=Strict`` and no CORS is allowed."""
    principal = _principal(request)
    token = request.cookies.get(COOKIE)
    if principal is None or token is None:
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    svc = services(request)
    expires = float(svc.auth.signer.verify(token, now=svc.auth.clock()).expires_at)
    return JSONResponse(
        {
            "access_token": token,
            "expires_at": expires,
            "org_id": principal.org_id,
            "scopes": list(principal.scopes),
        },
        headers={"Cache-Control": "no-store"},
    )


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
            client_id, form.get("client_secret", ""), None, at_most=DASHBOARD_SCOPES
        )
    except MeterlineError as exc:
        return templates.TemplateResponse(
            request, "login.html", {"client_id": client_id, "error": exc.message}, status_code=401
        )
    if Scope.ANALYTICS_READ.value not in issued["scope"].split():
        return templates.TemplateResponse(
            request,
            "login.html",
            {
                "client_id": client_id,
                "error": "this client lacks the analytics:read scope; "
                "sign in with a client that has it",
            },
            status_code=403,
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
