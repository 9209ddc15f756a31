"""Litestar with Meterline capture.

Run: ``METERLINE_URL=… METERLINE_INGEST_KEY=… uvicorn litestar_app:app``
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from meterline.capture import CaptureClient, init_litestar


def customer(request: Any) -> str | None:
    """The consumer: here the API key's owner sent in a header (Starlette-style request)."""
    value = request.headers.get("x-customer")
    return str(value) if value is not None else None


@get("/orders/{order_id:int}")
async def get_order(order_id: FromPath[int]) -> dict[str, int]:
    return {"order_id": order_id}


@post("/orders")
async def create_order(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"bytes": len(await request.body())}


@get("/boom")
async def boom() -> None:
    raise HTTPException(status_code=503, detail="down for maintenance")


@get("/crash")
async def crash() -> None:
    raise RuntimeError("a bug")


def build(client: CaptureClient) -> Litestar:
    """The example app with capture installed (404s and errors included)."""
    return init_litestar(Litestar(route_handlers=[get_order, create_order, boom, crash]), client)


app = build(CaptureClient(identify=customer))
