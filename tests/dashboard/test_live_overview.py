"""The overview page is a client of ``/v2/stream``: live KPIs, and it survives a restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ServerProcess, Tenant, make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ARTEFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artefacts"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Tenant]]:
    data_dir = tmp_path_factory.mktemp("live-dashboard")
    tenant = make_tenant(data_dir, "live-dashboard")
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
        "t => { const el = document.querySelector('[data-kpi=total_requests]');"
        " return el && el.dataset.source === 'stream'"
        " && el.querySelector('.value').textContent === t; }",
        arg=text,
        timeout=20_000,
    )


def test_overview_updates_from_the_stream_and_survives_a_restart(
    live_server: tuple[ServerProcess, Tenant], browser: Any
) -> None:
    server, tenant = live_server
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(f"{server.url}/login")
    page.fill("#client_id", tenant.reader_id)
    page.fill("#client_secret", tenant.reader_secret)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-stream=live]", timeout=20_000)
    _requests_shown(page, "0")

    _ingest(server, tenant, 25)
    _requests_shown(page, "25")
    assert page.inner_text("#updated").startswith("live")
    assert page.inner_text("[data-kpi=error_rate] .value") == "20.00%"
    # One burst and no more traffic: the tables still catch up once the store has it.
    page.wait_for_selector("#endpoints tbody tr", timeout=20_000)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "overview-live.png"), full_page=True)

    server.stop()
    page.wait_for_selector("body[data-stream=reconnecting]", timeout=20_000)
    server.start()
    page.wait_for_selector("body[data-stream=live]", timeout=60_000)
    # The restarted node seeded its live window from the store: the 25 are still there.
    _requests_shown(page, "25")
    _ingest(server, tenant, 5)
    _requests_shown(page, "30")
    page.close()
