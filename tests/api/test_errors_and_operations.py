"""Error format on every failure, OpenAPI, health and metrics endpoints."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import bearer
from tests.helpers import ServerProcess, Tenant

pytestmark = pytest.mark.e2e

ERROR_KEYS = {"code", "message", "details", "request_id", "timestamp"}


def test_not_found_and_method_not_allowed(server: ServerProcess) -> None:
    for method, path, status, code in (
        ("GET", "/v2/nothing-here", 404, "NOT_FOUND"),
        ("DELETE", "/v2/query", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/oauth/token", 405, "METHOD_NOT_ALLOWED"),
    ):
        response = httpx.request(method, f"{server.url}{path}")
        assert response.status_code == status
        error = response.json()["error"]
        assert set(error) >= ERROR_KEYS and error["code"] == code


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "field"),
    [
        ("GET", "/v2/analytics/overview?start=2026-13-45", None, "DATE_FORMAT_INVALID", "start"),
        (
            "GET",
            "/v2/analytics/overview?start=2026-01-02&end=2026-01-01",
            None,
            "VALIDATION_ERROR",
            "start",
        ),
        ("GET", "/v2/analytics/timeseries?range=1h", None, "PARAMETER_REQUIRED", "metric"),
        (
            "GET",
            "/v2/analytics/timeseries?metric=nope&range=1h",
            None,
            "VALIDATION_ERROR",
            "metric",
        ),
        (
            "GET",
            "/v2/analytics/timeseries?metric=requests&granularity=week",
            None,
            "VALIDATION_ERROR",
            "granularity",
        ),
        (
            "GET",
            "/v2/analytics/timeseries?metric=requests&granularity=minute&range=30d",
            None,
            "VALIDATION_ERROR",
            "granularity",
        ),
        ("GET", "/v2/analytics/endpoints?sort=bogus", None, "VALIDATION_ERROR", "sort"),
        ("GET", "/v2/analytics/endpoints?limit=0", None, "VALIDATION_ERROR", "limit"),
        ("GET", "/v2/analytics/overview?status=abc", None, "VALIDATION_ERROR", "status"),
        ("POST", "/v2/query", {"metrics": ["nope"]}, "VALIDATION_ERROR", "metrics"),
        (
            "POST",
            "/v2/query",
            {"metrics": ["requests"], "dimensions": ["nope"]},
            "VALIDATION_ERROR",
            "dimensions",
        ),
        (
            "POST",
            "/v2/query",
            {"metrics": ["requests"], "filters": [{"field": "status", "op": "eq", "value": "x"}]},
            "VALIDATION_ERROR",
            "filters[0].value",
        ),
        (
            "POST",
            "/v2/query",
            {"metrics": ["requests"], "start": "yesterday"},
            "DATE_FORMAT_INVALID",
            "start",
        ),
        ("POST", "/v2/analytics/visualization", {"metric": "bogus"}, "VALIDATION_ERROR", "metric"),
    ],
)
def test_bad_input_names_the_field(
    server: ServerProcess,
    tenants: tuple[Tenant, Tenant],
    method: str,
    path: str,
    body: object,
    code: str,
    field: str,
) -> None:
    token = server.token(tenants[0].reader_id, tenants[0].reader_secret)
    response = httpx.request(method, f"{server.url}{path}", json=body, headers=bearer(token))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) >= ERROR_KEYS
    assert any(v["field"] == field for v in error.get("validation_errors", [])), error


def test_unknown_metric_error_lists_the_allowed_ones(
    server: ServerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    token = server.token(tenants[0].reader_id, tenants[0].reader_secret)
    response = httpx.post(
        f"{server.url}/v2/query", json={"metrics": ["reqs"]}, headers=bearer(token)
    )
    message = response.json()["error"]["validation_errors"][0]["message"]
    assert "requests" in message and "latency_p95" in message


def test_malformed_json_and_wrong_type(
    server: ServerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    token = server.token(tenants[0].reader_id, tenants[0].reader_secret)
    response = httpx.post(
        f"{server.url}/v2/query",
        content=b"{bad",
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR"
    response = httpx.post(
        f"{server.url}/v2/query",
        content=b"a=b",
        headers={**bearer(token), "Content-Type": "text/plain"},
    )
    assert response.status_code == 415


def test_openapi_documents_every_route_and_the_error_shape(server: ServerProcess) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path in (
        "/oauth/token",
        "/v2/events",
        "/v2/query",
        "/v2/analytics/overview",
        "/v2/analytics/timeseries",
        "/v2/analytics/endpoints",
        "/v2/analytics/consumers",
        "/v2/analytics/visualization",
        "/v2/admin/orgs",
        "/v2/admin/clients",
        "/v2/admin/ingest-keys",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in spec["paths"], path
    assert "ErrorResponse" in spec["components"]["schemas"]
    responses = spec["paths"]["/v2/query"]["post"]["responses"]
    assert {"400", "401", "403"} <= set(responses)
    assert "requestBody" in spec["paths"]["/v2/events"]["post"]


def test_health_and_metrics(server: ServerProcess, tenants: tuple[Tenant, Tenant]) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready" and ready["store"] == "ok"
    httpx.post(
        f"{server.url}/v2/events",
        json=[{"event_id": "m1", "path": "/m", "status": 200}],
        headers=bearer(tenants[1].ingest_key),
    )
    text = httpx.get(f"{server.url}/metrics").text
    assert 'meterline_ingest_events_total{outcome="accepted"}' in text
    assert "meterline_query_seconds_bucket" in text
    assert "meterline_wal_commit_seconds_count" in text

    def sample(name: str) -> float:
        return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))

    assert sample('meterline_ingest_events_total{outcome="accepted"}') >= 1
    # Every acknowledged ingest request is timed.
    assert sample("meterline_ingest_request_seconds_count") >= 1
