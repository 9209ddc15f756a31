"""Flask with Meterline capture.

Run: ``METERLINE_URL=… METERLINE_INGEST_KEY=… flask --app flask_app run``
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request

from meterline.capture import CaptureClient, init_flask


def customer(req: Any) -> str | None:
    """The consumer: here the API key's owner sent in a header (``req`` is flask.Request)."""
    value = req.headers.get("X-Customer")
    return str(value) if value is not None else None


def build(client: CaptureClient) -> Flask:
    """The example app with capture installed."""
    app = Flask(__name__)

    @app.get("/orders/<int:order_id>")
    def get_order(order_id: int) -> dict[str, int]:
        return {"order_id": order_id}

    @app.post("/orders")
    def create_order() -> tuple[dict[str, int], int]:
        return {"bytes": len(request.get_data())}, 201

    @app.get("/boom")
    def boom() -> None:
        abort(503)

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("a bug")  # the client gets a 500; capture records it

    init_flask(app, client)
    return app


app = build(CaptureClient(identify=customer))
