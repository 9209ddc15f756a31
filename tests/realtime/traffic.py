"""Shared stream-test traffic: events to ingest and the stream → query metric names."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.helpers import ServerProcess, Tenant

VOCAB = {
    "requests": "requests",
    "requests_per_minute": "requests_per_minute",
    "errors": "errors",
    "error_rate": "error_rate",
    "api_response_time": "latency_avg",
    "p50_latency": "latency_p50",
    "p95_latency": "latency_p95",
    "p99_latency": "latency_p99",
    "active_consumers": "unique_consumers",
    "bandwidth": "bandwidth_bytes",
}


def ws_url(server: ServerProcess, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/v2/stream{query}"


def ingest(server: ServerProcess, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{server.url}/v2/events",
        json=events,
        headers={"Authorization": f"Bearer {tenant.ingest_key}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events)


def traffic(n: int, route_prefix: str = "/orders") -> list[dict[str, Any]]:
    now_ms = int(time.time() * 1000)
    statuses = (200, 200, 201, 404, 500, 503, 302)
    return [
        {
            "event_id": uuid.uuid4().hex,
            "timestamp": now_ms - (i * 397) % 90_000,
            "method": ("GET", "POST")[i % 2],
            "route": f"{route_prefix}/{('a', 'b', 'c')[i % 3]}",
            "status": statuses[i % len(statuses)],
            "latency_ms": round(3 + (i * 7.31) % 900, 1),
            "consumer_id": f"cust_{i % 11}",
            "region": ("eu", "us")[i % 2],
            "request_size": 100 + i,
            "response_size": 1000 + 3 * i,
        }
        for i in range(n)
    ]
