"""``GET /v2/analytics/errors``: the latest error events, filtered, one org only."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.conftest import bearer
from tests.helpers import ServerProcess, Tenant, eventually

pytestmark = pytest.mark.e2e


def test_recent_errors_over_http(server: ServerProcess, new_tenant: Callable[..., Tenant]) -> None:
    mine, theirs = new_tenant("professional"), new_tenant("professional")
    now = int(time.time() * 1000)
    events = [
        {"event_id": f"re-{i}", "timestamp": now - (10 - i) * 1000, "method": "GET",
         "path": f"/orders/{i}", "status": status, "latency_ms": 10 + i,
         "consumer_id": "acme" if i % 2 else "globex", "error": "boom" if status >= 500 else ""}
        for i, status in enumerate([200, 404, 500, 201, 503, 200, 429, 200])
    ]  # fmt: skip
    for who in (mine, theirs):
        sent = httpx.post(f"{server.url}/v2/events", json=events, headers=bearer(who.ingest_key))
        assert sent.json()["accepted"] == len(events)
    token = server.token(mine.reader_id, mine.reader_secret)

    def listed(**params: Any) -> list[dict[str, Any]]:
        got = httpx.get(
            f"{server.url}/v2/analytics/errors", params=params, headers=bearer(token), timeout=30
        )
        assert got.status_code == 200, got.text
        return list(got.json()["data"])

    every = eventually(lambda: _four(listed(range="1h")))
    assert [e["status"] for e in every] == [429, 503, 500, 404]
    assert every[1]["error"] == "boom" and every[1]["path"] == "/orders/4"
    assert every[0]["route"] == "/orders/:id" and every[0]["consumer_id"] == "globex"
    assert [e["status"] for e in listed(range="1h", consumer_id="acme")] == [404]
    assert [e["status"] for e in listed(range="1h", status_class="5xx", limit=1)] == [503]
    assert all(e["event_id"].startswith("re-") for e in every)

    bad = httpx.get(f"{server.url}/v2/analytics/errors", params={"limit": 0}, headers=bearer(token))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert httpx.get(f"{server.url}/v2/analytics/errors").status_code == 401


def _four(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert len(found) == 4, found
    return found
