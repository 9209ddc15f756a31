"""The overview page in a real browser: sign in, see data, watch it refresh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import bearer
from tests.api.traffic import make_events
from tests.helpers import ServerProcess, eventually, make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_overview_renders_live_data(
    server: ServerProcess, server_dir: Path, browser: Any, tmp_path: Path
) -> None:
    tenant = make_tenant(server_dir, "dashboard-viewer")
    events = make_events(1500, seed=5, span_s=3000, prefix="dash")
    response = httpx.post(f"{server.url}/v2/events", json=events, headers=bearer(tenant.ingest_key))
    assert response.json()["accepted"] == 1500
    token = server.token(tenant.reader_id, tenant.reader_secret)
    eventually(
        lambda: _assert(
            httpx.get(f"{server.url}/v2/analytics/overview?range=1h", headers=bearer(token)).json()[
                "total_requests"
            ]
            == 1500
        )
    )

    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(f"{server.url}/")
    assert page.url.endswith("/login")
    page.fill("#client_secret", "wrong")
    page.fill("#client_id", tenant.reader_id)
    page.click("button[type=submit]")
    assert "invalid client credentials" in page.inner_text("[role=alert]")

    page.fill("#client_id", tenant.reader_id)
    page.fill("#client_secret", tenant.reader_secret)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-kpi=total_requests]")
    assert page.inner_text("[data-kpi=total_requests] .value") == "1,500"
    assert page.inner_text("[data-kpi=error_rate] .value").endswith("%")
    assert "ms" in page.inner_text("[data-kpi=p95_latency_ms] .value")
    drawn = page.eval_on_selector_all(
        "#traffic path[data-series=requests]", "els => els.map(e => Number(e.dataset.points))"
    )
    assert drawn and drawn[0] >= 55
    rows = page.eval_on_selector_all("#endpoints tbody tr", "els => els.length")
    assert rows >= 3
    first_route = page.inner_text("#endpoints tbody tr:first-child td:first-child")
    assert first_route.startswith("GET /orders/:id")
    assert page.eval_on_selector_all("#consumers tbody tr", "els => els.length") == 10
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    # New traffic shows up without a reload: the panel refreshes every few seconds.
    more = make_events(500, seed=6, span_s=600, prefix="dash2")
    httpx.post(f"{server.url}/v2/events", json=more, headers=bearer(tenant.ingest_key))
    page.wait_for_function(
        "document.querySelector('[data-kpi=total_requests] .value').textContent === '2,000'",
        timeout=20_000,
    )
    assert page.inner_text("#updated").startswith("live")
    page.close()


def _assert(condition: bool) -> None:
    assert condition
