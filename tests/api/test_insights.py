"""``GET /v2/insights/anomalies`` on a real server: injected incidents are found and
described; steady traffic yields nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.conftest import bearer
from tests.helpers import ServerProcess, Tenant, eventually

pytestmark = pytest.mark.e2e

PER_MINUTE = 25


def steady(end_minute: int, minutes: int, tag: str) -> list[dict[str, Any]]:
    """25 requests a minute, 1 error every 4 minutes, 70 % US / 30 % DE, five consumers."""
    events = []
    for m in range(minutes, 0, -1):
        base = (end_minute - m) * 60
        for i in range(PER_MINUTE):
            events.append(
                {
                    "event_id": f"{tag}-{m}-{i}",
                    "timestamp": (base + i * 2) * 1000,
                    "method": "GET",
                    "route": "/orders/:id" if i % 2 else "/users/:id",
                    "status": 500 if (i == 0 and m % 4 == 0) else 200,
                    "latency_ms": 40 + (i % 10) * 2,
                    "consumer_id": f"c{i % 5}",
                    "region": "DE" if i % 10 < 3 else "US",
                }
            )
    return events


def incidents(end_minute: int, tag: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(minute_ago: int, n: int, **fields: Any) -> None:
        base = (end_minute - minute_ago) * 60
        for i in range(n):
            event = {
                "event_id": f"{tag}-x{minute_ago}-{i}",
                "timestamp": (base + 1) * 1000 + i,
                "method": "GET",
                "route": "/orders/:id",
                "status": 200,
                "latency_ms": 45,
                "consumer_id": "c9",
                "region": "US",
            }
            event.update(fields)
            out.append(event)

    add(10, 300, region="JP")  # volume spike, all from a region never seen
    add(15, 40, status=503)  # error burst
    add(20, 30, latency_ms=2000)  # slow minute
    add(8, 3, consumer_id="c1", route="/admin/export")  # c1 never called this
    return out


def load(server: ServerProcess, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    with server.client() as client:
        for start in range(0, len(events), 2000):
            response = client.post(
                "/v2/events", json=events[start : start + 2000], headers=bearer(tenant.ingest_key)
            )
            assert response.status_code == 202, response.text
            assert response.json()["rejected"] == []


def fetch(server: ServerProcess, token: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/v2/insights/anomalies", params=params, headers=bearer(token), timeout=60
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_injected_incidents_are_found_and_described(
    server: ServerProcess, new_tenant: Callable[..., Tenant]
) -> None:
    tenant = new_tenant()
    end_minute = int(time.time()) // 60
    events = steady(end_minute, 240, "s") + incidents(end_minute, "i")
    load(server, tenant, events)
    token = server.token(tenant.reader_id, tenant.reader_secret)

    def check() -> dict[str, Any]:
        body = fetch(server, token, window=30)
        kinds = {a["kind"] for a in body["data"]}
        assert {"volume", "error_rate", "latency", "geography", "usage_pattern"} <= kinds
        return body

    body = eventually(check, timeout=60)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for a in body["data"]:
        by_kind.setdefault(a["kind"], []).append(a)
    spike = max(by_kind["volume"], key=lambda a: a["observed"])
    assert spike["observed"] == PER_MINUTE + 300
    assert spike["expected"] == PER_MINUTE
    assert spike["direction"] == "spike"
    assert spike["upper"] < spike["observed"] and spike["score"] > 10
    (errors,) = by_kind["error_rate"]
    assert errors["observed"] == pytest.approx(40 / 65, abs=1e-3)
    assert errors["expected"] < 0.05 and errors["upper"] < errors["observed"]
    (slow,) = by_kind["latency"]
    assert slow["observed"] > 1000 and slow["expected"] < 100
    assert [a["where"] for a in by_kind["geography"]] == [{"region": "JP"}]
    assert [a["where"] for a in by_kind["usage_pattern"]] == [
        {"consumer_id": "c1", "route": "/admin/export"}
    ]

    # only the injected minutes are anomalous
    def stamp(minute_ago: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime((end_minute - minute_ago) * 60))

    spikes = {a["timestamp"] for a in by_kind["volume"] if a["direction"] == "spike"}
    assert spikes == {stamp(10), stamp(15), stamp(20)}
    # the clock may have moved on a minute since the load: that empty minute is a drop
    drops = {a["timestamp"] for a in by_kind["volume"] if a["direction"] == "drop"}
    assert drops <= {stamp(0), stamp(-1)}
    only = fetch(server, token, window=30, kind="latency")["data"]
    assert [a["kind"] for a in only] == ["latency"]


def test_steady_traffic_has_no_anomalies_and_new_orgs_are_learning(
    server: ServerProcess, new_tenant: Callable[..., Tenant]
) -> None:
    tenant = new_tenant()
    end_minute = int(time.time()) // 60
    load(server, tenant, steady(end_minute, 240, "q"))
    token = server.token(tenant.reader_id, tenant.reader_secret)
    eventually(
        lambda: (
            httpx.post(
                f"{server.url}/v2/query",
                json={"metrics": ["requests"], "range": "24h"},
                headers=bearer(token),
                timeout=30,
            ).json()["data"][0]["requests"]
            == 240 * PER_MINUTE
        )
    )
    edge = {time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime((end_minute + k) * 60)) for k in (0, 1)}

    def quiet() -> None:
        found = fetch(server, token, window=30)["data"]
        assert [a for a in found if a["direction"] != "drop"] == []
        assert {a["timestamp"] for a in found} <= edge

    eventually(quiet, timeout=30)
    fresh = new_tenant()
    load(server, fresh, incidents(end_minute, "f"))
    fresh_token = server.token(fresh.reader_id, fresh.reader_secret)
    # with no history there is no baseline: nothing is reported until it has learnt
    assert fetch(server, fresh_token, window=30)["data"] == []


def test_anomalies_need_a_token_and_valid_sensitivity(
    server: ServerProcess, new_tenant: Callable[..., Tenant]
) -> None:
    response = httpx.get(f"{server.url}/v2/insights/anomalies", timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTH_TOKEN_MISSING"
    tenant = new_tenant()
    token = server.token(tenant.reader_id, tenant.reader_secret)
    response = httpx.get(
        f"{server.url}/v2/insights/anomalies",
        params={"sensitivity": 3},
        headers=bearer(token),
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_forecast_follows_a_daily_pattern_with_intervals(
    server: ServerProcess, new_tenant: Callable[..., Tenant]
) -> None:
    tenant = new_tenant("professional")
    end_hour = int(time.time()) // 3600
    hours = 30 * 24
    events = []
    for h in range(hours, 0, -1):
        hour = end_hour - h
        n = 10 + 8 * (hour % 24 >= 12)  # 10 requests an hour at night, 18 by day
        for i in range(n):
            events.append(
                {
                    "event_id": f"fc-{hour}-{i}",
                    "timestamp": (hour * 3600 + i * 60) * 1000,
                    "route": "/orders/:id",
                    "method": "GET",
                    "status": 200,
                    "latency_ms": 30,
                }
            )
    load(server, tenant, events)
    token = server.token(tenant.reader_id, tenant.reader_secret)
    eventually(
        lambda: (
            httpx.post(
                f"{server.url}/v2/query",
                json={"metrics": ["requests"], "range": "60d"},
                headers=bearer(token),
                timeout=30,
            ).json()["data"][0]["requests"]
            == len(events)
        )
    )

    def check() -> None:
        response = httpx.get(
            f"{server.url}/v2/insights/forecast",
            params={"metric": "requests", "horizon": 24},
            headers=bearer(token),
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["history_hours"] >= hours - 1
        assert len(body["data"]) == 24
        for row in body["data"]:
            hour = int(row["timestamp"][11:13])
            assert row["yhat"] == pytest.approx(18 if hour >= 12 else 10, abs=0.5)
            assert row["lo95"] <= row["lo80"] <= row["yhat"] <= row["hi80"] <= row["hi95"]

    # rollups of back-dated events become visible a little after the totals
    eventually(check, timeout=60)
    bad = httpx.get(
        f"{server.url}/v2/insights/forecast",
        params={"metric": "no_such_metric"},
        headers=bearer(token),
        timeout=30,
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
    short = new_tenant()
    short_token = server.token(short.reader_id, short.reader_secret)
    response = httpx.get(
        f"{server.url}/v2/insights/forecast", headers=bearer(short_token), timeout=30
    )
    assert response.status_code == 400
    assert "not enough history" in response.json()["error"]["message"]
