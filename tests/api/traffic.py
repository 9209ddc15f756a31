"""Deterministic test traffic and the exact figures it should produce."""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from typing import Any

import numpy as np

ROUTES = [
    ("GET", "/orders/{}"),
    ("POST", "/orders"),
    ("GET", "/users/{}"),
    ("GET", "/search"),
    ("DELETE", "/orders/{}"),
]


def make_events(
    n: int, seed: int, *, span_s: float = 5400, prefix: str = ""
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = time.time()
    events = []
    for i in range(n):
        method, template = ROUTES[min(int(rng.paretovariate(1.2)) - 1, len(ROUTES) - 1)]
        events.append(
            {
                "event_id": f"{prefix}{seed}-{i}",
                "timestamp": int((now - 60 - rng.random() * span_s) * 1000),
                "method": method,
                "path": template.format(rng.randrange(1, 10_000)),
                "status": rng.choices([200, 201, 404, 429, 500, 503], [80, 8, 6, 2, 3, 1])[0],
                "latency_ms": round(rng.lognormvariate(3.5, 0.8), 3),
                "consumer_id": f"c{rng.randrange(40)}",
                "region": rng.choice(["US", "DE", "JP"]),
                "request_size": rng.randrange(0, 5000),
                "response_size": rng.randrange(0, 50_000),
            }
        )
    return events


def route_of(event: dict[str, Any]) -> str:
    path = event["path"]
    return "/".join(":id" if part.isdigit() else part for part in path.split("/"))


def expected(events: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = np.array([e["latency_ms"] for e in events])
    errors = sum(1 for e in events if e["status"] >= 400)
    by_endpoint = Counter((e["method"], route_of(e)) for e in events)
    bandwidth: dict[str, int] = defaultdict(int)
    for e in events:
        bandwidth[e["consumer_id"]] += e["request_size"] + e["response_size"]
    classes = Counter(f"{e['status'] // 100}xx" for e in events)
    return {
        "total": len(events),
        "error_rate": errors / len(events),
        "p50": float(np.percentile(latencies, 50)),
        "p95": float(np.percentile(latencies, 95)),
        "p99": float(np.percentile(latencies, 99)),
        "avg": float(latencies.mean()),
        "endpoints": sorted(by_endpoint.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1])),
        "bandwidth": dict(bandwidth),
        "classes": classes,
    }
