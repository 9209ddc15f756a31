"""The overview is a client of ``/v2/stream``: live KPIs and charts, and it survives a
server restart (reconnects, numbers resume)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import screenshot, sign_in
from tests.helpers import ServerProcess, Tenant, make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Tenant]]:
    data_dir = tmp_path_factory.mktemp("live-dashboard")
    tenant = make_tenant(data_dir, "live-dashboard", "professional")
    proc = ServerProcess(data_dir)
    proc.start()
    yield proc, tenant
    proc.stop()


def _ingest(server: ServerProcess, tenant: Tenant, n: int) -> None:
    now_ms = int(time.time() * 1000)
    events = [
        {
            "event_id": uuid.uuid4().hex,
            "timestamp": now_ms - i * 1000,
            "method": "GET",
            "route": "/live/:id",
            "status": 200 if i % 5 else 500,
            "latency_ms": 20 + i,
            "consumer_id": f"c{i % 3}",
        }
        for i in range(n)
    ]
    response = httpx.post(
        f"{server.url}/v2/events",
        json=events,
        headers={"Authorization": f"Bearer {tenant.ingest_key}"},
        timeout=30,
    )
    assert response.json()["accepted"] == n


def _requests_shown(page: Any, text: str) -> None:
    page.wait_for_function(
        "t => { const el = document.querySelector('[data-kpi=requests]');"
        " return el && el.dataset.source === 'stream'"
        " && el.querySelector('.value').textContent === t; }",
        arg=text,
        timeout=30_000,
    )


def _live_chart_reaches(page: Any, requests: int) -> None:
    """The live chart's newest point counts at least ``requests`` in the trailing minute."""
    page.wait_for_function(
        "n => { const d = document.querySelector('#live-traffic').dataset.last;"
        " return d && JSON.parse(d)[0] >= n; }",
        arg=requests,
        timeout=30_000,
    )


def test_overview_updates_from_the_stream_and_survives_a_restart(
    live_server: tuple[ServerProcess, Tenant], browser: Any
) -> None:
    server, tenant = live_server
    page, seen = sign_in(browser, server, tenant.reader_id, tenant.reader_secret)
    page.goto(f"{server.url}/?range=15m&refresh=3")
    page.wait_for_selector("body[data-stream=live]", timeout=30_000)
    _requests_shown(page, "0")

    _ingest(server, tenant, 25)
    _requests_shown(page, "25")
    _live_chart_reaches(page, 25)
    assert page.inner_text("#updated").startswith("live")
    assert page.inner_text("[data-kpi=error_rate] .value") == "20.00%"
    assert page.get_attribute("#mix", "data-total") == "25"
    # One burst and no more traffic: the REST panels still catch up once the store has it.
    page.wait_for_function(
        "() => { const c = document.querySelector('#endpoints tbody tr td:nth-child(2)');"
        " return c && c.textContent === '25'; }",
        timeout=30_000,
    )

    server.stop()
    page.wait_for_selector("body[data-stream=reconnecting]", timeout=30_000)
    server.start()
    page.wait_for_selector("body[data-stream=live]", timeout=60_000)
    # The restarted node seeded its live window from the store: the 25 are still there.
    _requests_shown(page, "25")
    _ingest(server, tenant, 5)
    _requests_shown(page, "30")
    # The first 25 may have left the trailing minute during the restart; the new 5 are in.
    _live_chart_reaches(page, 5)
    page.wait_for_function(
        "() => document.querySelector('#endpoints tbody tr td:nth-child(2)').textContent === '30'",
        timeout=30_000,
    )
    last = json.loads(page.get_attribute("#live-traffic", "data-last") or "[]")
    assert last[1] >= 1  # the new burst's 500 is among the trailing minute's errors
    screenshot(page, "overview-live.png")
    seen.assert_all_local(server)
    page.close()
