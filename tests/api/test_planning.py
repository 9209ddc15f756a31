"""Forecasts, capacity, scenarios and cost projections on a real server process.

Six weeks of back-dated history with a weekly pattern are loaded once: 40 requests on
weekdays and 20 at weekends, of which 10 (5 at weekends) fall in the day's busiest
minute, half on each of two routes; LLM spend of 1.00 USD and 1,000 tokens on weekdays,
half that at weekends. An exactly weekly series is forecast exactly, so every figure
below can be worked out by hand.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import bearer
from tests.helpers import ServerProcess, Tenant, eventually, make_tenant

pytestmark = pytest.mark.e2e

DAYS = 42


def weekend(day: int) -> bool:
    """Day ``day`` (days since 1970-01-01, a Thursday) is a Saturday or Sunday."""
    return (day + 3) % 7 >= 5


def requests_on(day: int) -> int:
    return 20 if weekend(day) else 40


def peak_on(day: int) -> int:
    return 5 if weekend(day) else 10


def cost_on(day: int) -> float:
    return 0.5 if weekend(day) else 1.0


def history(today: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for day in range(today - DAYS, today):
        base = day * 86400
        n, peak = requests_on(day), peak_on(day)
        for i in range(n):
            # the busiest minute is 23:58; the rest are one a minute from 01:00
            second = 23 * 3600 + 58 * 60 + i if i < peak else 3600 + 60 * i
            events.append(
                {
                    "event_id": f"pl-{day}-{i}",
                    "timestamp": (base + second) * 1000,
                    "method": "GET",
                    "route": "/orders/:id" if i % 2 else "/users/:id",
                    "status": 200,
                    "latency_ms": 30,
                }
            )
        for j in range(1 if weekend(day) else 2):
            events.append(
                {
                    "event_id": f"pl-llm-{day}-{j}",
                    "type": "llm",
                    "timestamp": (base + 7200 + j) * 1000,
                    "model": "gpt-4o",
                    "input_tokens": 300,
                    "output_tokens": 200,
                    "cost_usd": 0.5,
                }
            )
    return events


@dataclass
class Org:
    server: ServerProcess
    tenant: Tenant
    token: str
    admin: str
    today: int

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.server.url}{path}", params=params, headers=bearer(self.token), timeout=120
        )

    def ok(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def put_capacity(self, body: Any, token: str | None = None) -> httpx.Response:
        return httpx.put(
            f"{self.server.url}/v2/capacity",
            json=body,
            headers=bearer(token or self.admin),
            timeout=30,
        )

    def scenario(self, body: Any) -> httpx.Response:
        return httpx.post(
            f"{self.server.url}/v2/scenarios", json=body, headers=bearer(self.token), timeout=120
        )


def day_of(stamp: str) -> int:
    return (
        datetime.fromisoformat(stamp[:10]).replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    ).days


def iso_day(day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


@pytest.fixture(scope="module")
def org(server: ServerProcess, server_dir: Path) -> Iterator[Org]:
    tenant = make_tenant(server_dir, "planner", "professional")
    today = int(time.time()) // 86400
    events = history(today)
    with server.client() as client:
        for start in range(0, len(events), 2000):
            response = client.post(
                "/v2/events", json=events[start : start + 2000], headers=bearer(tenant.ingest_key)
            )
            assert response.status_code == 202, response.text
            assert response.json()["rejected"] == []
    token = server.token(tenant.reader_id, tenant.reader_secret)
    admin = server.token(tenant.client_id, tenant.client_secret)
    expected = sum(requests_on(d) for d in range(today - DAYS, today))

    def loaded() -> None:
        response = httpx.post(
            f"{server.url}/v2/query",
            json={"metrics": ["requests"], "range": "60d", "granularity": "day"},
            headers=bearer(token),
            timeout=30,
        )
        assert sum(r["requests"] for r in response.json()["data"]) == expected

    eventually(loaded, timeout=60)
    yield Org(server, tenant, token, admin, today)


def test_daily_forecast_follows_the_week_with_intervals(org: Org) -> None:
    def check() -> dict[str, Any]:
        body = org.ok("/v2/forecast", metric="requests", granularity="day", horizon=14)
        assert [day_of(r["timestamp"]) for r in body["data"]] == list(
            range(org.today, org.today + 14)
        )
        for row in body["data"]:
            assert row["yhat"] == pytest.approx(requests_on(day_of(row["timestamp"])), abs=0.5)
            assert row["lo95"] <= row["lo80"] <= row["yhat"] <= row["hi80"] <= row["hi95"]
        return body

    body = eventually(check, timeout=60)
    assert body["granularity"] == "day" and body["horizon"] == 14
    assert body["history_points"] == DAYS
    assert body["model"] in ("snaive7", "snaive7_level", "ets", "theta")
    # a filter on a dimension: half the traffic is on /orders/:id
    half = org.ok(
        "/v2/forecast", metric="requests", granularity="day", horizon=7, route="/orders/:id"
    )
    assert half["filters"] == [{"field": "route", "op": "eq", "value": "/orders/:id"}]
    for row in half["data"]:
        assert row["yhat"] == pytest.approx(requests_on(day_of(row["timestamp"])) / 2, abs=0.5)
    # the busiest minute of each day is a forecastable series too
    peaks = org.ok("/v2/forecast", metric="peak_requests_per_minute", granularity="day", horizon=7)
    for row in peaks["data"]:
        assert row["yhat"] == pytest.approx(peak_on(day_of(row["timestamp"])), abs=0.5)


def test_forecast_rejects_bad_parameters_in_the_error_format(org: Org) -> None:
    cases = [
        ({"granularity": "week"}, "granularity"),
        ({"granularity": "day", "horizon": 400}, "horizon"),
        ({"granularity": "hour", "horizon": 200}, "horizon"),
        ({"metric": "first_seen"}, "metric"),
        ({"metric": "no_such_metric"}, "metric"),
    ]
    for params, field in cases:
        response = org.get("/v2/forecast", **params)
        assert response.status_code == 400, (params, response.text)
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert {"code", "message", "details", "request_id", "timestamp"} <= set(error)
        assert [e["field"] for e in error["validation_errors"]] == [field]
    response = org.get("/v2/forecast", horizon=0)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    # a route with no history cannot be forecast: the message says what is missing
    response = org.get("/v2/forecast", granularity="day", route="/never")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "not enough history to forecast"
    assert "28 days" in error["details"]


def test_capacity_is_configured_and_crossings_come_from_the_forecast(org: Org) -> None:
    unset = eventually(lambda: org.ok("/v2/capacity", horizon=14), timeout=60)
    assert unset["capacity_rpm"] is None and unset["status"] == "unconfigured"
    assert unset["crossing"] == {"expected": None, "likely": None, "possible": None}
    yesterday = org.today - 1
    assert unset["current"]["peak_rpm"] == peak_on(yesterday)

    # a reader may not change it; a bad value is refused field by field
    refused = org.put_capacity({"capacity_rpm": 8}, token=org.token)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "AUTH_SCOPE_INSUFFICIENT"
    bad = org.put_capacity({"capacity_rpm": -1, "cost_per_million_requests": "x", "cpu": 1})
    assert bad.status_code == 400
    assert sorted(e["field"] for e in bad.json()["error"]["validation_errors"]) == [
        "capacity_rpm",
        "cost_per_million_requests",
        "cpu",
    ]

    stored = org.put_capacity({"capacity_rpm": 12, "cost_per_million_requests": 1000})
    assert stored.status_code == 200, stored.text
    assert stored.json()["capacity_rpm"] == 12
    roomy = org.ok("/v2/capacity", horizon=14)
    assert roomy["status"] == "ok"
    assert roomy["crossing"] == {"expected": None, "likely": None, "possible": None}
    assert roomy["current"]["headroom_rpm"] == 12 - peak_on(yesterday)
    assert roomy["forecast_peak"]["yhat"] == pytest.approx(10, abs=0.5)
    assert roomy["forecast_peak"]["headroom_rpm"] == pytest.approx(2, abs=0.5)

    # below the weekday peak: the first weekday ahead is when it is crossed
    org.put_capacity({"capacity_rpm": 8})
    tight = org.ok("/v2/capacity", horizon=14)
    first_weekday = next(d for d in range(org.today, org.today + 14) if not weekend(d))
    assert tight["status"] in ("at_risk", "over")
    assert day_of(tight["crossing"]["expected"]) == first_weekday
    assert day_of(tight["crossing"]["likely"]) <= first_weekday
    assert day_of(tight["crossing"]["possible"]) <= day_of(tight["crossing"]["likely"])
    assert tight["forecast_peak"]["headroom_pct"] == pytest.approx(-25, abs=6)
    # hour by hour: the busiest minute is at 23:58, so the 23:00 hour carries the peak
    hourly = org.ok("/v2/capacity", granularity="hour", horizon=24)
    assert len(hourly["data"]) == 24
    (late,) = [r for r in hourly["data"] if r["timestamp"][11:13] == "23"]
    assert late["yhat"] == pytest.approx(peak_on(day_of(late["timestamp"])), abs=0.5)
    assert hourly["forecast_peak"]["timestamp"] == late["timestamp"]
    org.put_capacity({"capacity_rpm": None})
    assert org.ok("/v2/capacity")["status"] == "unconfigured"


def test_a_scenario_scales_traffic_peak_headroom_and_cost(org: Org) -> None:
    assert (
        org.put_capacity({"capacity_rpm": 12, "cost_per_million_requests": 1000}).status_code == 200
    )
    campaign = (org.today + 2, org.today + 3)
    launch = org.today + 7
    body = {
        "name": "holiday campaign",
        "horizon": 14,
        "adjustments": [
            {
                "name": "campaign",
                "start": iso_day(campaign[0]),
                "end": iso_day(campaign[1]),
                "multiplier": 3,
            },
            {"name": "launch", "start": iso_day(launch), "multiplier": 1.5},
        ],
    }

    def run() -> dict[str, Any]:
        response = org.scenario(body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    result = eventually(run, timeout=60)

    def factor(day: int) -> float:
        return 3.0 if campaign[0] <= day <= campaign[1] else 1.5 if day >= launch else 1.0

    days = list(range(org.today, org.today + 14))
    assert [r["date"] for r in result["data"]] == [iso_day(d) for d in days]
    for row, day in zip(result["data"], days, strict=True):
        assert row["multiplier"] == factor(day)
        assert row["requests"]["baseline"] == pytest.approx(requests_on(day), abs=0.5)
        assert row["requests"]["yhat"] == pytest.approx(requests_on(day) * factor(day), abs=1.5)
        assert row["peak_rpm"]["yhat"] == pytest.approx(peak_on(day) * factor(day), abs=1.5)
        assert row["llm_cost_usd"]["scenario"] == pytest.approx(
            cost_on(day) * factor(day), abs=0.05
        )
    summary = result["summary"]
    baseline = sum(requests_on(d) for d in days)
    scenario = sum(requests_on(d) * factor(d) for d in days)
    assert summary["requests"]["baseline"] == pytest.approx(baseline, abs=5)
    assert summary["requests"]["scenario"] == pytest.approx(scenario, abs=10)
    top = max(peak_on(d) * factor(d) for d in days)
    assert summary["peak_rpm"]["scenario"] == pytest.approx(top, abs=1.5)
    assert summary["peak_rpm"]["baseline"] == pytest.approx(10, abs=0.5)
    capacity = summary["capacity"]
    assert capacity["capacity_rpm"] == 12
    assert capacity["headroom_rpm"] == pytest.approx(12 - top, abs=1.5)
    first_over = next(d for d in days if peak_on(d) * factor(d) >= 12)
    assert capacity["crossing"]["expected"] == iso_day(first_over)
    assert capacity["days_over"] == sum(1 for d in days if peak_on(d) * factor(d) >= 12)
    cost = summary["cost_usd"]
    assert cost["requests"]["scenario"] == pytest.approx(scenario * 1000 / 1e6, rel=0.05)
    llm = sum(cost_on(d) * factor(d) for d in days)
    assert cost["llm"]["scenario"] == pytest.approx(llm, rel=0.05)
    assert cost["total"]["scenario"] == pytest.approx(
        cost["llm"]["scenario"] + cost["requests"]["scenario"], abs=1e-3
    )
    assert cost["total"]["baseline"] < cost["total"]["scenario"]
    # a seasonal swing ramps in: no change on its first day, the full multiplier on its last
    ramp = org.scenario(
        {
            "horizon": 7,
            "adjustments": [
                {
                    "name": "season",
                    "start": iso_day(org.today),
                    "end": iso_day(org.today + 4),
                    "multiplier": 0.6,
                    "shape": "ramp",
                }
            ],
        }
    ).json()
    assert [r["multiplier"] for r in ramp["data"]] == pytest.approx([1, 0.9, 0.8, 0.7, 0.6, 1, 1])


def test_scenario_validation_names_every_bad_field(org: Org) -> None:
    response = org.scenario(
        {
            "horizon": 14,
            "adjustments": [
                {"start": "2026-13-45", "multiplier": 2},
                {"start": iso_day(org.today + 3), "end": iso_day(org.today + 1), "multiplier": 2},
                {"start": iso_day(org.today), "multiplier": 0},
                {"start": iso_day(org.today + 100), "multiplier": 2},
            ],
            "colour": "red",
        }
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert sorted(e["field"] for e in error["validation_errors"]) == [
        "adjustments[0].start",
        "adjustments[1].end",
        "adjustments[2].multiplier",
        "adjustments[3]",
        "colour",
    ]
    assert org.scenario({"adjustments": []}).status_code == 400
    not_json = httpx.post(
        f"{org.server.url}/v2/scenarios",
        content=b"{",
        headers={**bearer(org.token), "content-type": "application/json"},
        timeout=30,
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "VALIDATION_ERROR"


def test_cost_projections_come_from_the_daily_forecast(org: Org) -> None:
    body = eventually(lambda: org.ok("/v2/analytics/costs/projections"), timeout=60)
    month = sum(cost_on(d) for d in range(org.today, org.today + 30))
    quarter = sum(cost_on(d) for d in range(org.today, org.today + 90))
    year = sum(cost_on(d) for d in range(org.today, org.today + 365))
    assert body["nextMonth"] == pytest.approx(month, rel=0.02)
    assert body["next3Months"] == pytest.approx(quarter, rel=0.03)
    assert body["nextYear"] == pytest.approx(year, rel=0.05)
    tokens = sum(1000 * cost_on(d) for d in range(org.today, org.today + 30))
    assert body["tokensNextMonth"] == pytest.approx(tokens, rel=0.02)
    assert body["dailyCost"] == pytest.approx(body["nextMonth"] / 30, abs=1e-3)
    assert body["dailyTokens"] == pytest.approx(body["tokensNextMonth"] / 30, abs=1)
    assert body["baselineDays"] == DAYS
    for name in ("nextMonth", "next3Months", "nextYear"):
        bounds = body["intervals"][name]
        assert bounds["lo95"] <= bounds["lo80"] <= body[name] <= bounds["hi80"] <= bounds["hi95"]
    assert [d["date"] for d in body["daily"]] == [iso_day(org.today + i) for i in range(30)]
    # the weekly shape survives: not a flat multiple of the average day
    assert {round(d["cost"], 1) for d in body["daily"]} == {0.5, 1.0}
    # a model with no spend has no history to project from
    none = org.get("/v2/analytics/costs/projections", model="no-such-model")
    assert none.status_code == 400
    assert none.json()["error"]["message"] == "not enough history to forecast"


def test_openapi_documents_the_planning_routes(server: ServerProcess) -> None:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    for path, method in (
        ("/v2/forecast", "get"),
        ("/v2/capacity", "get"),
        ("/v2/capacity", "put"),
        ("/v2/scenarios", "post"),
        ("/v2/analytics/costs/projections", "get"),
        ("/v2/insights/forecast", "get"),
    ):
        responses = spec["paths"][path][method]["responses"]
        assert {"400", "401", "403"} <= set(responses), (path, method)


def test_planning_routes_need_a_token(server: ServerProcess) -> None:
    for method, path in (
        ("GET", "/v2/forecast"),
        ("GET", "/v2/capacity"),
        ("PUT", "/v2/capacity"),
        ("POST", "/v2/scenarios"),
        ("GET", "/v2/analytics/costs/projections"),
    ):
        response = httpx.request(method, f"{server.url}{path}", timeout=30)
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["code"] == "AUTH_TOKEN_MISSING"
