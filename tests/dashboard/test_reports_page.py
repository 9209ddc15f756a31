"""The reports page in a real browser: generate from a template, watch it complete,
download it, and manage schedules — all through ``/v2/reports``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import screenshot, sign_in
from tests.helpers import ServerProcess, make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


def _status_of(page: Any, name: str) -> str:
    return str(
        page.eval_on_selector(
            "#reports",
            "(el, name) => { const row = [...el.querySelectorAll('tbody tr')]"
            ".find(r => r.firstElementChild.textContent === name);"
            " return row ? row.querySelector('[data-status]').dataset.status : ''; }",
            name,
        )
    )


def test_generate_list_download_and_schedules(
    server: ServerProcess, server_dir: Path, browser: Any
) -> None:
    tenant = make_tenant(server_dir, "dashboard-reports", "professional")
    token = server.token(tenant.client_id, tenant.client_secret)
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        f"{server.url}/v2/reports/schedules",
        json={
            "name": "Monday overview",
            "cron": "0 9 * * 1",
            "timezone": "Europe/Berlin",
            "report": {"template_id": "api_overview", "format": "csv", "filters": {"range": "7d"}},
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["schedule_id"]

    page, seen = sign_in(browser, server, tenant.client_id, tenant.client_secret)
    page.click("nav.pages a:has-text('Reports')")
    page.wait_for_url("**/reports**")
    page.wait_for_selector("#template[data-count='5']")
    assert "No reports yet" in page.inner_text("#reports")

    # A name the API refuses: its validation message is shown, nothing is created.
    page.fill("input[name=name]", "Q3")
    page.eval_on_selector("#generate input[name=name]", "el => el.removeAttribute('minlength')")
    page.click("#generate button[type=submit]")
    page.wait_for_selector("#message.error")
    assert "name" in page.inner_text("#message")

    page.fill("input[name=name]", "Endpoint performance, last week")
    page.select_option("#template", "endpoint_performance")
    page.select_option("select[name=format]", "pdf")
    page.click("#generate button[type=submit]")
    page.wait_for_selector("#message:not(.error):has-text('Generating')")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#reports [data-status]')]"
        ".some(td => td.dataset.status === 'completed')",
        timeout=120_000,
    )
    assert _status_of(page, "Endpoint performance, last week") == "completed"
    link = page.get_attribute("#reports a.download", "href")
    assert link and link.startswith("/v2/reports/")
    got = page.request.get(f"{server.url}{link}")
    assert got.status == 200 and got.body().startswith(b"%PDF")
    listed = httpx.get(f"{server.url}/v2/reports", headers=headers).json()["reports"]
    assert [r["name"] for r in listed] == ["Endpoint performance, last week"]

    # Schedules: pause, resume, run now (a second report appears), delete.
    row = f"td.actions[data-schedule='{schedule_id}']"
    page.wait_for_selector(row)
    page.click(f"{row} button[data-action=pause]")
    page.wait_for_selector(f"{row} button[data-action=resume]")
    schedule = httpx.get(f"{server.url}/v2/reports/schedules/{schedule_id}", headers=headers)
    assert schedule.json()["status"] == "paused"
    page.click(f"{row} button[data-action=resume]")
    page.wait_for_selector(f"{row} button[data-action=pause]")
    page.click(f"{row} button[data-action=run]")
    page.wait_for_function(
        "() => document.querySelectorAll('#reports tbody tr').length === 2", timeout=30_000
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#reports [data-status]')]"
        ".every(td => td.dataset.status === 'completed')",
        timeout=120_000,
    )
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"{row} button[data-action=delete]")
    page.wait_for_selector("#schedules :text('No schedules')")
    gone = httpx.get(f"{server.url}/v2/reports/schedules/{schedule_id}", headers=headers)
    assert gone.status_code == 404

    # A schedule made on the page: a daily digest at 07:30 Berlin time.
    page.fill("#schedule input[name=name]", "Daily errors digest")
    page.select_option("#schedule-template", "errors_slos")
    page.select_option("#schedule select[name=frequency]", "daily")
    page.fill("#schedule input[name=time]", "07:30")
    page.fill("#schedule input[name=timezone]", "Europe/Berlin")
    page.click("#schedule button[type=submit]")
    page.wait_for_selector("#message:has-text('Scheduled')")
    page.wait_for_selector("#schedules td:has-text('Daily errors digest')")
    (made,) = httpx.get(f"{server.url}/v2/reports/schedules", headers=headers).json()["schedules"]
    assert made["cron"] == "30 7 * * *" and made["timezone"] == "Europe/Berlin"
    assert made["report"]["template_id"] == "errors_slos"
    assert made["report"]["filters"] == {"range": "24h"}
    screenshot(page, "reports.png")

    # The overview's reports panel lists them too.
    page.goto(f"{server.url}/")
    page.wait_for_selector("#reports tbody tr")
    assert "Endpoint performance, last week" in page.inner_text("#reports")
    seen.assert_all_local(server)
    page.close()
