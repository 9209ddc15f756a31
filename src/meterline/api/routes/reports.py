"""``/v2/reports``: templates, generation, status, downloads and schedules (seed §4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from meterline.api.deps import requires, services
from meterline.api.errors import error_response, request_id_of
from meterline.api.routes.common import read_json
from meterline.api.schemas import errors
from meterline.auth import Principal, Scope
from meterline.errors import NotFoundError
from meterline.reports import Download, QuotaExceededError

router = APIRouter(tags=["reports"])
_READ = Depends(requires(Scope.REPORTS_READ))
_WRITE = Depends(requires(Scope.REPORTS_WRITE))


def _file(found: Download) -> FileResponse:
    return FileResponse(
        found.path,
        media_type=found.media_type,
        filename=found.filename,
        headers={"Cache-Control": "private, no-store"},
    )


def _quota_response(request: Request, exc: QuotaExceededError) -> JSONResponse:
    decision = exc.decision
    retry_after = max(1, int(decision.reset_at - services(request).reports.clock()))
    return error_response(
        429,
        exc.code,
        exc.message,
        request_id=request_id_of(request),
        details=exc.details,
        headers={
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(decision.reset_at)),
            "X-RateLimit-Retry-After": str(retry_after),
            "Retry-After": str(retry_after),
        },
    )


@router.get("/v2/reports/templates", responses=errors(401, 403))
def list_templates(request: Request, principal: Principal = _READ) -> dict[str, Any]:
    """Built-in templates and the org's own."""
    return {"templates": services(request).reports.list_templates(principal.org_id)}


@router.post("/v2/reports/templates", status_code=201, responses=errors(400, 401, 403))
async def create_template(request: Request, principal: Principal = _WRITE) -> dict[str, Any]:
    """Save a template: ``{name, description, sections: [{title, display, chart_type?,
    query}]}``, validated against the query model."""
    body = await read_json(request)
    return services(request).reports.save_template(principal.org_id, body)


@router.get("/v2/reports/templates/{template_id}", responses=errors(401, 403, 404))
def get_template(
    template_id: str, request: Request, principal: Principal = _READ
) -> dict[str, Any]:
    """One template."""
    found = services(request).reports.template(principal.org_id, template_id)
    if found is None:
        raise NotFoundError(f"template {template_id!r} was not found", code="TEMPLATE_NOT_FOUND")
    return found.as_json()


@router.delete(
    "/v2/reports/templates/{template_id}", status_code=204, responses=errors(401, 403, 404)
)
def delete_template(template_id: str, request: Request, principal: Principal = _WRITE) -> Response:
    """Delete one of the org's templates."""
    services(request).reports.delete_template(principal.org_id, template_id)
    return Response(status_code=204)


@router.post("/v2/reports/generate", status_code=202, responses=errors(400, 401, 403, 409, 429))
async def generate(request: Request, principal: Principal = _WRITE) -> Response:
    """Start a report; poll ``progress_url``. An ``Idempotency-Key`` header makes retries
    safe: the same key and body answer the first report again and are not counted."""
    body = await read_json(request)
    try:
        created, replayed = services(request).reports.generate(
            principal.org_id, principal.plan, body, request.headers.get("idempotency-key")
        )
    except QuotaExceededError as exc:
        return _quota_response(request, exc)
    headers = {"Location": f"/v2/reports/{created['report_id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(created, status_code=202, headers=headers)


@router.get("/v2/reports", responses=errors(400, 401, 403))
def list_reports(
    request: Request,
    principal: Principal = _READ,
    page: int = Query(1),
    limit: int = Query(25),
    status: str | None = Query(None),
    template_id: str | None = Query(None),
    created_after: str | None = Query(None),
) -> dict[str, Any]:
    """The org's reports, newest first, with ``pagination``."""
    return services(request).reports.list(
        principal.org_id,
        page=page,
        limit=limit,
        status=status,
        template_id=template_id,
        created_after=created_after,
    )


@router.post("/v2/reports/batch", responses=errors(400, 401, 403))
async def batch(request: Request, principal: Principal = _READ) -> dict[str, Any]:
    """Several reports by id: ``{"report_ids": [...]}`` → ``{reports, not_found}``."""
    body = await read_json(request)
    ids = body.get("report_ids") if isinstance(body, dict) else None
    return services(request).reports.batch(principal.org_id, ids)


@router.post("/v2/reports/schedules", status_code=201, responses=errors(400, 401, 403))
async def create_schedule(request: Request, principal: Principal = _WRITE) -> dict[str, Any]:
    """``{name, cron | frequency+time, timezone, report}``; fires once per due time."""
    body = await read_json(request)
    return services(request).reports.create_schedule(principal.org_id, body)


@router.get("/v2/reports/schedules", responses=errors(401, 403))
def list_schedules(request: Request, principal: Principal = _READ) -> dict[str, Any]:
    """The org's schedules."""
    return services(request).reports.list_schedules(principal.org_id)


@router.get("/v2/reports/schedules/{schedule_id}", responses=errors(401, 403, 404))
def get_schedule(
    schedule_id: str, request: Request, principal: Principal = _READ
) -> dict[str, Any]:
    """One schedule with its next run."""
    return services(request).reports.get_schedule(principal.org_id, schedule_id)


@router.post("/v2/reports/schedules/{schedule_id}/pause", responses=errors(401, 403, 404))
def pause_schedule(
    schedule_id: str, request: Request, principal: Principal = _WRITE
) -> dict[str, Any]:
    """Stop firing until resumed."""
    return services(request).reports.set_schedule_active(principal.org_id, schedule_id, False)


@router.post("/v2/reports/schedules/{schedule_id}/resume", responses=errors(401, 403, 404))
def resume_schedule(
    schedule_id: str, request: Request, principal: Principal = _WRITE
) -> dict[str, Any]:
    """Fire again from the next due time (missed ones are not made up)."""
    return services(request).reports.set_schedule_active(principal.org_id, schedule_id, True)


@router.post(
    "/v2/reports/schedules/{schedule_id}/run", status_code=202, responses=errors(401, 403, 404)
)
def run_schedule(schedule_id: str, request: Request, principal: Principal = _WRITE) -> Response:
    """Make the schedule's report now."""
    try:
        created = services(request).reports.run_schedule_now(
            principal.org_id, principal.plan, schedule_id
        )
    except QuotaExceededError as exc:
        return _quota_response(request, exc)
    return JSONResponse(created, status_code=202)


@router.delete(
    "/v2/reports/schedules/{schedule_id}", status_code=204, responses=errors(401, 403, 404)
)
def delete_schedule(schedule_id: str, request: Request, principal: Principal = _WRITE) -> Response:
    """Delete a schedule."""
    services(request).reports.delete_schedule(principal.org_id, schedule_id)
    return Response(status_code=204)


@router.get("/v2/reports/{report_id}", responses=errors(401, 403, 404))
def get_report(report_id: str, request: Request, principal: Principal = _READ) -> dict[str, Any]:
    """Status, progress, file info, filters applied, deliveries and the download link."""
    return services(request).reports.get(principal.org_id, report_id)


@router.get("/v2/reports/{report_id}/download", responses=errors(401, 403, 404, 409, 410))
def download(
    report_id: str,
    request: Request,
    expires: int | None = Query(None),
    signature: str | None = Query(None),
) -> FileResponse:
    """The report file: with a bearer token of the org, or through the signed link from
    ``download_url`` (no token needed, until it expires: 410 afterwards)."""
    svc = services(request).reports
    if expires is not None and signature is not None:
        return _file(svc.download_signed(report_id, expires, signature))
    principal = requires(Scope.REPORTS_READ)(request)
    return _file(svc.download(principal.org_id, report_id))
