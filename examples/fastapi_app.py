"""FastAPI with Meterline capture.

Run: ``METERLINE_URL=… METERLINE_INGEST_KEY=… uvicorn fastapi_app:app``
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request

from meterline.capture import CaptureClient, MeterlineMiddleware


def customer(request: Request) -> str | None:
    """The consumer: here the API key's owner sent in a header."""
    return request.headers.get("x-customer")


def build(client: CaptureClient) -> FastAPI:
    """The example app with capture installed."""
    app = FastAPI()
    app.add_middleware(MeterlineMiddleware, client=client)

    @app.get("/orders/{order_id}")
    def get_order(order_id: int) -> dict[str, int]:
        return {"order_id": order_id}

    @app.post("/orders", status_code=201)
    async def create_order(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/boom")
    def boom() -> None:
        raise HTTPException(status_code=503, detail="down for maintenance")

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("a bug")  # the client gets a 500; capture records it

    return app


app = build(CaptureClient(identify=customer, exclude_paths=("/healthz",)))
