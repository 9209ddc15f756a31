"""The overview and its drill-downs in a real browser, fed by the REST API and the stream."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import bearer
from tests.api.traffic import expected, make_events, route_of
from tests.dashboard.conftest import Requests, screenshot, sign_in
from tests.helpers import ServerProcess, eventually, make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


def _rows(page: Any, selector: str) -> int:
    return int(page.eval_on_selector_all(f"{selector} tbody tr", "els => els.length"))


def _wait_rows(page: Any, selector: str, n: int) -> None:
    """Wait until the table under ``selector`` has ``n`` rows (panels load independently)."""
    page.wait_for_function(
        "([s, n]) => document.querySelectorAll(`${s} tbody tr`).length === n",
        arg=[selector, n],
        timeout=30_000,
    )


def _ingest(server: ServerProcess, key: str, events: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{server.url}/v2/events", json=events, headers=bearer(key), timeout=60)
    assert response.json()["accepted"] == len(events)


def _kpi(page: Any, name: str, text: str) -> None:
    page.wait_for_function(
        "([n, t]) => { const el = document.querySelector(`[data-kpi=${n}]`);"
        " return el && el.dataset.source === 'stream'"
        " && el.querySelector('.value').textContent === t; }",
        arg=[name, text],
        timeout=30_000,
    )


def test_overview_and_drill_downs(server: ServerProcess, server_dir: Path, browser: Any) -> None:
    tenant = make_tenant(server_dir, "dashboard-overview", "professional")
    events = make_events(1500, seed=5, span_s=3000, prefix="dash")
    _ingest(server, tenant.ingest_key, events)
    token = server.token(tenant.reader_id, tenant.reader_secret)
    eventually(
        lambda: _assert(
            httpx.get(f"{server.url}/v2/analytics/overview?range=1h", headers=bearer(token)).json()[
                "total_requests"
            ]
            == 1500
        )
    )

    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    page.goto(f"{server.url}/")
    assert page.url.endswith("/login")
    page.fill("#client_id", tenant.reader_id)
    page.fill("#client_secret", "wrong")
    page.click("button[type=submit]")
    assert "invalid client credentials" in page.inner_text("[role=alert]")
    page.close()

    page, seen = sign_in(browser, server, tenant.client_id, tenant.client_secret)
    page.goto(f"{server.url}/?range=1h&refresh=3")
    page.wait_for_selector("body[data-stream=live]", timeout=30_000)
    _kpi(page, "requests", "1,500")
    figures = expected(events)
    shown_rate = page.inner_text("[data-kpi=error_rate] .value")
    assert shown_rate == f"{figures['error_rate'] * 100:.2f}%"
    assert page.inner_text("[data-kpi=p95_latency] .value").endswith(" ms")

    # History charts from POST /v2/query, drawn by uPlot.
    page.wait_for_selector("#traffic[data-state=drawn]", timeout=30_000)
    assert int(page.get_attribute("#traffic", "data-points") or 0) >= 50
    assert page.eval_on_selector("#traffic", "el => !!el.querySelector('canvas')")
    page.wait_for_selector("#latency[data-state=drawn]")
    # Live charts grow a point per second from the stream.
    page.wait_for_function(
        "Number(document.querySelector('#live-traffic').dataset.points) >= 3", timeout=30_000
    )

    page.wait_for_selector("#endpoints tbody tr")
    (method, route), count = figures["endpoints"][0]
    assert page.inner_text("#endpoints tbody tr:first-child td:first-child") == f"{method} {route}"
    assert _rows(page, "#endpoints") == len(figures["endpoints"])
    _wait_rows(page, "#consumers", 10)
    page.wait_for_selector("#regions tbody tr")
    assert sorted(
        page.eval_on_selector_all(
            "#regions tbody tr td:first-child", "e => e.map(x => x.textContent)"
        )
    ) == ["DE", "JP", "US"]
    assert page.get_attribute("#mix", "data-total") == "1500"
    page.wait_for_selector("#status-codes tbody tr")
    # Insight and report panels settle into content, whatever the history allows.
    page.wait_for_function(
        "['forecast', 'anomalies', 'reports'].every(id =>"
        " !document.getElementById(id).textContent.includes('Loading'))",
        timeout=30_000,
    )
    assert "No reports yet" in page.inner_text("#reports")
    screenshot(page, "overview.png")

    # New traffic: the KPIs move at once (stream), the tables on the next refresh (REST).
    more = make_events(500, seed=6, span_s=600, prefix="dash2")
    _ingest(server, tenant.ingest_key, more)
    _kpi(page, "requests", "2,000")
    after = expected(events + more)
    top = f"{after['endpoints'][0][1]:,}"
    page.wait_for_function(
        "t => document.querySelector('#endpoints tbody tr td:nth-child(2)').textContent === t",
        arg=top,
        timeout=30_000,
    )
    assert page.inner_text("#updated").startswith("live")

    # Drill down into the busiest endpoint: its own live figures, charts and errors.
    page.click("#endpoints tbody tr:first-child a")
    page.wait_for_url("**/endpoint?**")
    (method, route), count = after["endpoints"][0]
    assert page.inner_text("#subject") == f"{method} {route}"
    page.wait_for_selector("body[data-stream=live]", timeout=30_000)
    _kpi(page, "requests", f"{count:,}")
    page.wait_for_selector("#traffic[data-state=drawn]", timeout=30_000)
    page.wait_for_selector("#errors tbody tr", timeout=30_000)
    errors_here = sorted(
        (
            e
            for e in events + more
            if e["status"] >= 400 and route_of(e) == route and e["method"] == method
        ),
        key=lambda e: e["timestamp"],
        reverse=True,
    )
    _wait_rows(page, "#errors", min(25, len(errors_here)))
    first_error = page.inner_text("#errors tbody tr:first-child td:nth-child(4)")
    assert first_error == errors_here[0]["path"]
    _wait_rows(page, "#breakdown", 10)
    screenshot(page, "drilldown-endpoint.png")

    # …and from there into one of its consumers.
    consumer = page.inner_text("#breakdown tbody tr:first-child td:first-child")
    page.click("#breakdown tbody tr:first-child a")
    page.wait_for_url("**/consumer?**")
    assert page.inner_text("#subject") == consumer
    mine = [e for e in events + more if e["consumer_id"] == consumer]
    _kpi(page, "requests", f"{len(mine):,}")
    page.wait_for_selector("#breakdown tbody tr", timeout=30_000)
    mine_errors = [e for e in mine if e["status"] >= 400]
    if mine_errors:
        _wait_rows(page, "#errors", min(25, len(mine_errors)))
    screenshot(page, "drilldown-consumer.png")
    seen.assert_all_local(server)
    assert seen.failed == []
    page.close()


def test_reader_sees_live_data_and_reports_need_their_scope(
    server: ServerProcess, server_dir: Path, browser: Any
) -> None:
    tenant = make_tenant(server_dir, "dashboard-reader", "professional")
    page, seen = sign_in(browser, server, tenant.reader_id, tenant.reader_secret)
    page.wait_for_selector("body[data-stream=live]", timeout=30_000)
    _kpi(page, "requests", "0")
    page.wait_for_function(
        "!document.getElementById('reports').textContent.includes('Loading')", timeout=30_000
    )
    assert "reports:read" in page.inner_text("#reports")
    page.goto(f"{server.url}/reports")
    page.wait_for_selector("#message:has-text('reports:read')")
    assert isinstance(seen, Requests)
    seen.assert_all_local(server)
    page.close()


def test_page_degrades_when_routes_or_the_chart_library_are_missing(
    server: ServerProcess, server_dir: Path, browser: Any
) -> None:
    """An older server without the anomaly route, and an install without ``npm ci``: the
    affected panels say so and everything else stays live."""
    tenant = make_tenant(server_dir, "dashboard-degraded", "professional")
    page, seen = sign_in(browser, server, tenant.reader_id, tenant.reader_secret)
    page.route(
        "**/v2/insights/anomalies*",
        lambda route: route.fulfill(status=404, json={"detail": "Not Found"}),
    )
    page.route(
        "**/static/vendor/uplot.js",
        lambda route: route.fulfill(status=503, json={"detail": "not installed"}),
    )
    page.goto(f"{server.url}/?refresh=3")
    page.wait_for_selector("body[data-stream=live]", timeout=30_000)
    page.wait_for_selector("#anomalies [data-state=missing]", timeout=30_000)
    assert "not available on this server" in page.inner_text("#anomalies")
    page.wait_for_selector("#traffic[data-state=unavailable]", timeout=30_000)
    assert "make frontend" in page.inner_text("#traffic")
    _ingest(server, tenant.ingest_key, make_events(40, seed=9, span_s=300, prefix="deg"))
    _kpi(page, "requests", "40")
    _wait_rows(page, "#endpoints", len(expected(make_events(40, seed=9, span_s=300))["endpoints"]))
    seen.assert_all_local(server)
    page.close()


def _assert(condition: bool) -> None:
    assert condition


def test_forecast_panel_draws_history_and_forecast(
    server: ServerProcess, server_dir: Path, browser: Any
) -> None:
    """Thirty days of hourly traffic: enough history for the forecast route to answer."""
    tenant = make_tenant(server_dir, "dashboard-forecast", "professional")
    hour_ms = 3_600_000
    now_hour = int(time.time() * 1000) // hour_ms * hour_ms
    events = [
        {
            "event_id": f"fc-{h}-{i}",
            "timestamp": now_hour - h * hour_ms + i * 60_000,
            "method": "GET",
            "route": "/forecast",
            "status": 200,
            "latency_ms": 15,
        }
        for h in range(1, 30 * 24)
        for i in range(2 + (h % 24) // 6)
    ]
    for start in range(0, len(events), 2000):
        _ingest(server, tenant.ingest_key, events[start : start + 2000])
    token = server.token(tenant.reader_id, tenant.reader_secret)
    eventually(
        lambda: _assert(
            httpx.get(
                f"{server.url}/v2/insights/forecast?metric=requests&horizon=24",
                headers=bearer(token),
                timeout=60,
            ).status_code
            == 200
        ),
        timeout=60,
    )
    page, seen = sign_in(browser, server, tenant.reader_id, tenant.reader_secret)
    page.wait_for_selector("#forecast[data-state=drawn]", timeout=60_000)
    # 48 hours of history and 24 forecast hours on one axis.
    assert int(page.get_attribute("#forecast", "data-points") or 0) >= 24
    assert page.inner_text("#forecast-note").startswith("next 24 h")
    page.locator("#forecast").screenshot(path=str(screenshot(page, "overview-forecast.png")))
    seen.assert_all_local(server)
    page.close()
