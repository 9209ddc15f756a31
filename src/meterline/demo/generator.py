"""A traffic model with the shape of real API traffic, and a sender for it.

Endpoint popularity and consumer activity follow Zipf laws; volume follows a diurnal
cycle; latency is lognormal per endpoint with a few slow endpoints; errors are mostly
rare 4xx with occasional bursts of 5xx on one endpoint.
"""

from __future__ import annotations

import gzip
import itertools
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

_ROUTES: tuple[tuple[str, str, float], ...] = (
    # method, path template ({id} is filled in), median latency ms
    ("GET", "/v1/orders/{id}", 35),
    ("GET", "/v1/orders", 60),
    ("POST", "/v1/orders", 120),
    ("GET", "/v1/products/{id}", 25),
    ("GET", "/v1/products", 45),
    ("GET", "/v1/search", 180),
    ("GET", "/v1/users/{id}", 20),
    ("PATCH", "/v1/users/{id}", 70),
    ("POST", "/v1/payments", 400),
    ("GET", "/v1/payments/{id}", 40),
    ("POST", "/v1/auth/token", 90),
    ("GET", "/v1/inventory/{id}", 30),
    ("PUT", "/v1/inventory/{id}", 85),
    ("GET", "/v1/reports/export", 1500),
    ("POST", "/v1/webhooks", 55),
    ("GET", "/v1/shipments/{id}", 50),
    ("POST", "/v1/shipments", 140),
    ("DELETE", "/v1/orders/{id}", 65),
    ("GET", "/v1/health", 3),
    ("POST", "/v1/llm/chat", 900),
)
_REGIONS = ("US", "US", "US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "AU", "NL")
_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "claude-sonnet-4")
_AGENTS = ("python-httpx/0.27", "Go-http-client/2.0", "okhttp/4.12", "curl/8.5", "Mozilla/5.0")


def _zipf_cumulative(n: int, s: float = 1.1) -> list[float]:
    # Cumulative weights, so each draw is a bisection rather than a pass over n weights.
    return list(itertools.accumulate(1 / (k**s) for k in range(1, n + 1)))


@dataclass
class TrafficModel:
    """Generates events; deterministic for a given ``seed``.

    ``consumers`` distinct consumers, ``diurnal`` the peak-to-trough swing of volume.
    """

    consumers: int = 3000
    seed: int = 7
    diurnal: float = 0.6
    llm_share: float = 0.04
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._route_weights = _zipf_cumulative(len(_ROUTES), 1.05)
        self._consumer_ids = [f"cus_{i:05d}" for i in range(self.consumers)]
        self._consumer_weights = _zipf_cumulative(self.consumers, 0.9)
        self._burst_route: int | None = None
        self._burst_until = 0.0

    def rate_factor(self, ts: float) -> float:
        """Relative volume at ``ts``: a diurnal cycle peaking mid-afternoon UTC."""
        hour = (ts % 86400) / 3600
        return 1 + self.diurnal * math.sin((hour - 8) / 24 * 2 * math.pi)

    def _status(self, route_index: int, ts: float) -> int:
        rng = self.rng
        if self._burst_route is None and rng.random() < 0.00005:
            self._burst_route = rng.randrange(len(_ROUTES))
            self._burst_until = ts + rng.uniform(60, 300)
        if self._burst_route == route_index and ts < self._burst_until:
            if rng.random() < 0.45:
                return rng.choice((500, 502, 503, 504))
        elif ts >= self._burst_until:
            self._burst_route = None
        roll = rng.random()
        if roll < 0.003:
            return rng.choice((500, 503))
        if roll < 0.04:
            return rng.choice((400, 401, 403, 404, 404, 404, 409, 422, 429))
        method = _ROUTES[route_index][0]
        return 201 if method == "POST" and rng.random() < 0.7 else 200

    def event(self, ts: float) -> dict[str, Any]:
        """One event at time ``ts`` (seconds)."""
        rng = self.rng
        consumer = rng.choices(self._consumer_ids, cum_weights=self._consumer_weights)[0]
        if rng.random() < self.llm_share:
            model = rng.choice(_MODELS)
            inp = int(rng.lognormvariate(6.5, 0.8))
            return {
                "event_id": uuid.uuid4().hex,
                "type": "llm",
                "timestamp": int(ts * 1000),
                "model": model,
                "input_tokens": inp,
                "output_tokens": int(inp * rng.uniform(0.1, 0.6)),
                "latency_ms": round(rng.lognormvariate(math.log(800), 0.5), 2),
                "success": rng.random() > 0.02,
                "user_id": consumer,
                "session_id": f"s_{rng.randrange(10_000)}",
            }
        index = rng.choices(range(len(_ROUTES)), cum_weights=self._route_weights)[0]
        method, template, median = _ROUTES[index]
        path = template.replace("{id}", str(rng.randrange(1, 1_000_000)))
        status = self._status(index, ts)
        latency = rng.lognormvariate(math.log(median), 0.55)
        if status >= 500:
            latency *= rng.uniform(1.5, 4)
        return {
            "event_id": uuid.uuid4().hex,
            "timestamp": int(ts * 1000),
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": round(latency, 2),
            "consumer_id": consumer,
            "region": rng.choice(_REGIONS),
            "request_size": int(rng.lognormvariate(5, 1.2))
            if method in ("POST", "PUT", "PATCH")
            else 0,
            "response_size": int(rng.lognormvariate(7.5, 1.0)),
            "user_agent": rng.choice(_AGENTS),
            "client_ip": f"198.51.{rng.randrange(256)}.{rng.randrange(256)}",
        }

    def history(self, start: float, end: float, mean_rate: float) -> Iterator[dict[str, Any]]:
        """Events between ``start`` and ``end`` at ``mean_rate``/s shaped by the cycle."""
        ts = start
        while ts < end:
            rate = max(mean_rate * self.rate_factor(ts), 0.01)
            ts += self.rng.expovariate(rate)
            if ts < end:
                yield self.event(ts)


def send_traffic(
    url: str,
    key: str,
    events: Iterator[dict[str, Any]],
    *,
    batch_size: int = 1000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """POST ``events`` to ``url``/v2/events in gzip batches; returns how many were accepted."""
    accepted = 0
    encoder = msgspec.json.Encoder()
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    with httpx.Client(base_url=url.rstrip("/"), timeout=30) as client:
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal accepted
            body = gzip.compress(encoder.encode(batch), 3)
            for attempt in range(5):
                response = client.post("/v2/events", content=body, headers=headers)
                if response.status_code == 202:
                    accepted += int(response.json()["accepted"])
                    break
                if response.status_code not in (429, 503):
                    response.raise_for_status()
                time.sleep(0.5 * 2**attempt)
            if on_batch is not None:
                on_batch(len(batch))
            batch.clear()

        for event in events:
            batch.append(event)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    return accepted


def live(
    model: TrafficModel, rate: float, duration: float | None
) -> Iterator[list[dict[str, Any]]]:
    """Batches of events as they happen, once a second, at ``rate``/s (scaled by the cycle)."""
    started = time.time()
    last = started
    while duration is None or time.time() - started < duration:
        time.sleep(max(0.0, last + 1 - time.time()))
        now = time.time()
        yield list(model.history(last, now, rate))
        last = now
