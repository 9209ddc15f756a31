"""End to end with the real OpenTelemetry Python SDK: a FastAPI app instrumented by
opentelemetry-instrumentation-fastapi exports with the HTTP OTLPSpanExporter to a running
Meterline, and Meterline's counts, routes, statuses and latencies match the requests."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.capture.conftest import Org, serving
from tests.helpers import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    def get_order(order_id: int) -> dict[str, int]:
        if order_id >= 900:
            raise HTTPException(status_code=404, detail="no such order")
        return {"order_id": order_id}

    @app.post("/orders", status_code=201)
    def create_order() -> dict[str, bool]:
        return {"created": True}

    @app.get("/slow")
    def slow() -> dict[str, bool]:
        time.sleep(0.05)
        return {"slow": True}

    return app


def test_fastapi_instrumented_app_exports_to_meterline(org: Org) -> None:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "orders-api", "deployment.environment": "ci"})
    )
    exporter = OTLPSpanExporter(
        endpoint=f"{org.server.url}/v1/traces",
        headers={"Authorization": f"Bearer {org.key}"},
        compression=Compression.Gzip,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    memory = InMemorySpanExporter()  # the SDK's own view of the spans, to compare with
    provider.add_span_processor(SimpleSpanProcessor(memory))
    app = build_app()
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)

    made: dict[tuple[str, str, int], int] = defaultdict(int)
    with serving(app, "asgi") as http:
        for order in range(1, 8):
            assert http.get(f"/orders/{order}").status_code == 200
            made[("GET", "/orders/{order_id}", 200)] += 1
        for order in (901, 902):
            assert http.get(f"/orders/{order}").status_code == 404
            made[("GET", "/orders/{order_id}", 404)] += 1
        for _ in range(3):
            assert http.post("/orders").status_code == 201
            made[("POST", "/orders", 201)] += 1
        for _ in range(2):
            assert http.get("/slow").status_code == 200
            made[("GET", "/slow", 200)] += 1
    assert provider.force_flush(30_000)

    spans: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for item in memory.get_finished_spans():
        if item.kind is SpanKind.SERVER:
            a: Any = item.attributes
            key = (
                a.get("http.request.method") or a.get("http.method"),
                a["http.route"],
                a.get("http.response.status_code") or a.get("http.status_code"),
            )
            assert item.end_time is not None and item.start_time is not None
            spans[key].append((item.end_time - item.start_time) / 1e6)
    assert {k: len(v) for k, v in spans.items()} == made

    def reported() -> dict[tuple[str, str, int, str], dict[str, Any]]:
        got = org.by_request()
        assert {(m, r, s): int(row["requests"]) for (m, r, s, _), row in got.items()} == made
        return got

    got = eventually(reported, timeout=30)
    for (method, route, status, _), row in got.items():
        durations = spans[(method, route, status)]
        assert row["latency_avg"] == pytest.approx(sum(durations) / len(durations), abs=0.01)
    slow = got[("GET", "/slow", 200, "")]
    assert slow["latency_avg"] >= 50.0
    provider.shutdown()
