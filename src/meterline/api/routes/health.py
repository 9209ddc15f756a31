"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from meterline.api.deps import services

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The store does not answer"}})
def readyz(request: Request) -> JSONResponse:
    """Readiness: the store answers and the ingest buffer is not overflowing."""
    svc = services(request)
    store_ok = svc.store.ping()
    body: dict[str, Any] = {
        "status": "ready" if store_ok else "unavailable",
        "store": "ok" if store_ok else "unavailable",
        "pending_rows": svc.writer.pending_rows,
    }
    return JSONResponse(body, status_code=200 if store_ok else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus exposition of Meterline's own ingest and query metrics."""
    return Response(
        services(request).telemetry.exposition(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
