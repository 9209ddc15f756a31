"""Numbers are exact (counts, error rates, bandwidth, endpoint order) and percentiles
from rollups are within 2 % of the exact value — checked on a real server process."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import bearer
from tests.api.traffic import expected, make_events
from tests.helpers import ServerProcess, Tenant, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def loaded(server: ServerProcess, server_dir: Any) -> tuple[Tenant, dict[str, Any], str]:
    from tests.helpers import make_tenant

    tenant = make_tenant(server_dir, "exact-figures")
    events = make_events(6000, seed=11)
    with server.client() as client:
        for start in range(0, len(events), 2000):
            response = client.post(
                "/v2/events", json=events[start : start + 2000], headers=bearer(tenant.ingest_key)
            )
            assert response.status_code == 202, response.text
            assert response.json() == {"accepted": 2000, "duplicates": 0, "rejected": []}
    token = server.token(tenant.reader_id, tenant.reader_secret)
    return tenant, expected(events), token


def get(server: ServerProcess, token: str, path: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{server.url}{path}", params=params, headers=bearer(token), timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_overview_is_exact(
    server: ServerProcess, loaded: tuple[Tenant, dict[str, Any], str]
) -> None:
    _, want, token = loaded

    def check() -> dict[str, Any]:
        body = get(server, token, "/v2/analytics/overview", range="3h")
        assert body["total_requests"] == want["total"]
        return body

    body = eventually(check)
    assert body["error_rate"] == pytest.approx(want["error_rate"], abs=1e-6)
    assert body["avg_latency_ms"] == pytest.approx(want["avg"], abs=1e-3)  # rounded to µs
    for name in ("p50", "p95", "p99"):
        assert body[f"{name}_latency_ms"] == pytest.approx(want[name], rel=0.02), name
    assert body["status_distribution"] == {
        k: want["classes"].get(k, 0) for k in ("2xx", "3xx", "4xx", "5xx")
    }
    assert body["requests_per_minute"] == pytest.approx(want["total"] / 180, rel=0.01)


def test_top_endpoints_order_is_exact(
    server: ServerProcess, loaded: tuple[Tenant, dict[str, Any], str]
) -> None:
    _, want, token = loaded
    body = eventually(lambda: get(server, token, "/v2/analytics/endpoints", range="3h", limit=50))
    got = [((r["method"], r["route"]), r["requests"]) for r in body["data"]]
    assert got == want["endpoints"]


def test_consumer_bandwidth_is_exact(
    server: ServerProcess, loaded: tuple[Tenant, dict[str, Any], str]
) -> None:
    _, want, token = loaded
    body = get(server, token, "/v2/analytics/consumers", range="3h", limit=100)
    assert body["pagination"]["total"] == len(want["bandwidth"])
    assert {r["consumer_id"]: r["bandwidth_bytes"] for r in body["data"]} == want["bandwidth"]
    first = get(server, token, "/v2/analytics/consumers", range="3h", limit=5, offset=0)["data"]
    second = get(server, token, "/v2/analytics/consumers", range="3h", limit=5, offset=5)["data"]
    assert not {r["consumer_id"] for r in first} & {r["consumer_id"] for r in second}
    assert [r["requests"] for r in first + second] == sorted(
        (r["requests"] for r in first + second), reverse=True
    )


def test_query_matches_presets_and_filters(
    server: ServerProcess, loaded: tuple[Tenant, dict[str, Any], str]
) -> None:
    _, want, token = loaded
    response = httpx.post(
        f"{server.url}/v2/query",
        json={
            "metrics": ["requests", "errors"],
            "dimensions": ["status_class"],
            "filters": [{"field": "status_class", "op": "in", "value": ["4xx", "5xx"]}],
            "range": "3h",
            "order_by": [{"field": "status_class", "direction": "asc"}],
        },
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    rows = response.json()["data"]
    assert [(r["status_class"], r["requests"]) for r in rows] == [
        ("4xx", want["classes"]["4xx"]),
        ("5xx", want["classes"]["5xx"]),
    ]
    assert all(r["errors"] == r["requests"] for r in rows)


def test_timeseries_is_gap_filled_and_sums_to_total(
    server: ServerProcess, loaded: tuple[Tenant, dict[str, Any], str]
) -> None:
    _, want, token = loaded
    body = get(
        server,
        token,
        "/v2/analytics/timeseries",
        metric="requests",
        granularity="minute",
        range="3h",
    )
    points = body["points"]
    assert len(points) in (180, 181)
    assert sum(p["value"] for p in points) == want["total"]
    assert any(p["value"] == 0 for p in points)  # the last minute and the first half hour are empty
    stamps = [p["timestamp"] for p in points]
    assert stamps == sorted(stamps)
    hourly = get(
        server, token, "/v2/analytics/timeseries", metric="requests", granularity="hour", range="3h"
    )
    assert sum(p["value"] for p in hourly["points"]) == want["total"]


def test_visualization_is_chart_ready(
    server: ServerProcess, loaded: tuple[Tenant, dict[str, Any], str]
) -> None:
    _, want, token = loaded
    response = httpx.post(
        f"{server.url}/v2/analytics/visualization",
        json={
            "metric": "requests",
            "time_range": "24h",
            "aggregation": "hourly",
            "format": "chart_ready",
        },
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    points = response.json()["data_points"]
    assert sum(p["value"] for p in points) == want["total"]
    assert {"timestamp", "value", "display_value"} <= set(points[0])
    assert any(p["display_value"] == f"{p['value']:,}" and p["value"] > 0 for p in points)


def test_raw_only_dimension_agrees_with_rollups(
    server: ServerProcess, loaded: tuple[Tenant, dict[str, Any], str]
) -> None:
    _, want, token = loaded
    response = httpx.post(
        f"{server.url}/v2/query",
        json={"metrics": ["requests", "latency_p95"], "dimensions": ["user_id"], "range": "3h"},
        headers=bearer(token),
    )
    rows = response.json()["data"]
    assert rows == [
        {
            "user_id": "",
            "requests": want["total"],
            "latency_p95": pytest.approx(want["p95"], rel=0.02),
        }
    ]
