"""Starlette with Meterline capture.

Run: ``METERLINE_URL=… METERLINE_INGEST_KEY=… uvicorn starlette_app:app``
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meterline.capture import CaptureClient, MeterlineMiddleware


def customer(request: Request) -> str | None:
    """The consumer: here the API key's owner sent in a header."""
    return request.headers.get("x-customer")


async def get_order(request: Request) -> Response:
    return JSONResponse({"order_id": request.path_params["order_id"]})


async def create_order(request: Request) -> Response:
    return JSONResponse({"bytes": len(await request.body())}, status_code=201)


async def boom(request: Request) -> Response:
    raise HTTPException(status_code=503, detail="down for maintenance")


async def crash(request: Request) -> Response:
    raise RuntimeError("a bug")  # the client gets a 500; capture records it


def build(client: CaptureClient) -> Starlette:
    """The example app with capture installed."""
    return Starlette(
        routes=[
            Route("/orders/{order_id:int}", get_order),
            Route("/orders", create_order, methods=["POST"]),
            Route("/boom", boom),
            Route("/crash", crash),
        ],
        middleware=[Middleware(MeterlineMiddleware, client=client)],
    )


app = build(CaptureClient(identify=customer))
