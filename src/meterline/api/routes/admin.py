"""``/v2/admin/*``: orgs, clients, ingest keys and erasure, under ``admin:manage``.

An admin manages its own org; only an admin of an *operator* org (the one that runs
this Meterline) may create orgs or act on another org.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from meterline.api.deps import requires, services
from meterline.api.routes.common import read_json
from meterline.api.schemas import errors
from meterline.auth import Principal, Scope
from meterline.errors import NotFoundError, ScopeError, ValidationError

router = APIRouter(prefix="/v2/admin", tags=["admin"])
admin = requires(Scope.ADMIN_MANAGE)


def _target_org(principal: Principal, body: dict[str, Any]) -> str:
    org = body.get("org_id") or body.get("org") or principal.org_id
    if not isinstance(org, str):
        raise ValidationError("'org_id' must be a string")
    if org != principal.org_id and not principal.operator:
        raise ScopeError("only an operator admin may manage another org")
    return org


async def _object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    return body


@router.post("/orgs", status_code=201, responses=errors(400, 401, 403, 409))
async def create_org(request: Request, principal: Principal = Depends(admin)) -> JSONResponse:
    """Create an org ``{name, plan}``; returns ``{org_id, name, plan}``."""
    if not principal.operator:
        raise ScopeError("only an operator admin may create orgs")
    body = await _object(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise ValidationError("'name' is required", code="PARAMETER_REQUIRED")
    created = services(request).auth.create_org(name, str(body.get("plan", "basic")))
    return JSONResponse(created, status_code=201)


@router.post("/clients", status_code=201, responses=errors(400, 401, 403, 404))
async def create_client(request: Request, principal: Principal = Depends(admin)) -> JSONResponse:
    """Create an API client ``{scopes, org_id?, name?, plan?}``; the secret is shown once."""
    body = await _object(request)
    scopes = body.get("scopes")
    if isinstance(scopes, list):
        scopes = " ".join(str(s) for s in scopes)
    if not isinstance(scopes, str):
        raise ValidationError("'scopes' is required", code="PARAMETER_REQUIRED")
    plan = body.get("plan")
    if plan is not None and not principal.operator:
        raise ScopeError("only an operator admin may change an org's plan")
    created = services(request).auth.create_client(
        _target_org(principal, body),
        scopes,
        name=str(body.get("name", "api client")),
        plan=str(plan) if plan is not None else None,
    )
    return JSONResponse(created, status_code=201)


@router.post("/ingest-keys", status_code=201, responses=errors(400, 401, 403, 404))
async def create_ingest_key(
    request: Request, principal: Principal = Depends(admin)
) -> JSONResponse:
    """Create a write-only ingest key ``{org_id?}``; the key is shown once."""
    body = await _object(request)
    created = services(request).auth.create_ingest_key(_target_org(principal, body))
    return JSONResponse(created, status_code=201)


@router.delete("/consumers/{consumer_id}", status_code=200, responses=errors(401, 403))
async def erase_consumer(
    consumer_id: str, request: Request, principal: Principal = Depends(admin)
) -> dict[str, Any]:
    """Erase every stored event of one consumer of the caller's org (GDPR)."""
    svc = services(request)
    await asyncio.to_thread(svc.writer.flush_now)
    await asyncio.to_thread(svc.store.erase_consumer, principal.org_id, consumer_id)
    return {"consumer_id": consumer_id, "erased": True}


@router.delete("/clients/{client_id}", status_code=200, responses=errors(401, 403, 404))
async def revoke_client(
    client_id: str, request: Request, principal: Principal = Depends(admin)
) -> dict[str, Any]:
    """Revoke an API client of your org and close its open streams on every node
    (``error`` AUTH_TOKEN_INVALID, then close 4401)."""
    svc = services(request)
    owner = await asyncio.to_thread(svc.auth.client_org, client_id)
    if owner is None or owner != principal.org_id:
        raise NotFoundError("no such client in your org", details="Check the client_id.")
    await asyncio.to_thread(svc.auth.revoke_client, client_id)
    await svc.hub.revoke(client_id)
    return {"client_id": client_id, "revoked": True}
