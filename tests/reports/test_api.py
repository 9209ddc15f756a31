"""The report API end to end, on a real server process over HTTP."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from tests.helpers import ServerProcess, Tenant, eventually, make_tenant
from tests.reports.test_renderers import ARTIFACTS

pytestmark = pytest.mark.e2e
_names = itertools.count()


def tenant(server_dir: Path, plan: str = "professional") -> Tenant:
    return make_tenant(server_dir, f"reports-{next(_names)}-{time.time_ns()}", plan)


class Api:
    def __init__(self, server: ServerProcess, who: Tenant) -> None:
        self.server = server
        self.who = who
        self.headers = {"Authorization": f"Bearer {server.token(who.client_id, who.client_secret)}"}

    def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return httpx.post(self.server.url + path, json=body, headers={**self.headers, **headers},
                          timeout=30)  # fmt: skip

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.server.url + path, params=params, headers=self.headers, timeout=30)

    def finished(self, report_id: str) -> dict[str, Any]:
        def check() -> dict[str, Any]:
            body = self.get(f"/v2/reports/{report_id}").json()
            assert body["status"] != "processing", body
            return dict(body)

        return eventually(check, timeout=120, interval=0.3)


def body(**overrides: Any) -> dict[str, Any]:
    return {"name": "Weekly API overview", "template_id": "api_overview",
            "filters": {"range": "24h"}, "format": "pdf",
            "layout": {"orientation": "landscape"}, **overrides}  # fmt: skip


def ingest(server: ServerProcess, who: Tenant, count: int) -> None:
    now = int(time.time() * 1000)
    events = [
        {"event_id": f"rep-{i}", "timestamp": now - i * 30_000, "method": "GET",
         "route": f"/v1/orders-{i % 4}/:id", "status": 500 if i % 10 == 0 else 200,
         "latency_ms": 20 + i % 40, "consumer_id": f"cust-{i % 3}"}
        for i in range(count)
    ]  # fmt: skip
    response = httpx.post(server.url + "/v2/events", json=events,
                          headers={"Authorization": f"Bearer {who.ingest_key}"})  # fmt: skip
    assert response.json()["accepted"] == count

    def visible() -> None:
        api = Api(server, who)
        got = httpx.post(server.url + "/v2/query", headers=api.headers,
                         json={"metrics": ["requests"], "range": "24h"}).json()  # fmt: skip
        assert got["data"][0]["requests"] == count

    eventually(visible, timeout=30)


@pytest.mark.slow
def test_each_format_is_generated_from_data_and_downloaded(server, server_dir):
    who = tenant(server_dir)
    ingest(server, who, 240)
    api = Api(server, who)
    ids = {}
    for fmt in ("pdf", "excel", "csv", "json"):
        created = api.post("/v2/reports/generate", body(format=fmt))
        assert created.status_code == 202, created.text
        accepted = created.json()
        assert set(accepted) == {"report_id", "name", "status", "estimated_completion",
                                 "progress_url", "created_at"}  # fmt: skip
        assert accepted["status"] == "processing"
        assert accepted["report_id"].startswith("rpt_")
        ids[fmt] = accepted["report_id"]
    files: dict[str, bytes] = {}
    for fmt, report_id in ids.items():
        report = api.finished(report_id)
        assert report["status"] == "completed", report
        assert report["progress"] == 100
        info = report["file_info"]
        assert info["format"] == fmt and info["size_bytes"] > 0 and info["size_formatted"]
        with_token = httpx.get(f"{server.url}/v2/reports/{report_id}/download",
                               headers=api.headers)  # fmt: skip
        assert with_token.status_code == 200
        signed = httpx.get(report["download_url"])  # no token: the link is signed
        assert signed.status_code == 200 and signed.content == with_token.content
        assert len(signed.content) == info["size_bytes"]
        files[fmt] = signed.content
    document = json.loads(files["json"])
    kpis = document["sections"][0]["items"]
    assert {i["metric"]: i["value"] for i in kpis}["requests"] == 240
    assert {i["metric"]: i["value"] for i in kpis}["error_rate"] == pytest.approx(0.1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / "api-overview.pdf"
    pdf.write_bytes(files["pdf"])
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    for i in range(4):
        assert f"/v1/orders-{i}/:id" in text
    assert "240" in text and "10.00 %" in text
    report = api.get(f"/v2/reports/{ids['pdf']}").json()
    assert f"of {report['file_info']['page_count']}" in text
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(pdf), str(ARTIFACTS / "api-overview")],
                   check=True)  # fmt: skip
    book = openpyxl.load_workbook(io.BytesIO(files["excel"]))
    assert "Top endpoints" in book.sheetnames
    assert "/v1/orders-0/:id" in files["csv"].decode("utf-8-sig")


def test_validation_errors_in_the_seed_format(server, server_dir):
    api = Api(server, tenant(server_dir))
    short = api.post("/v2/reports/generate", body(name="abc"))
    assert short.status_code == 400
    error = short.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["validation_errors"][0]["field"] == "name"
    assert {"request_id", "timestamp", "message", "details"} <= set(error)
    unknown = api.post("/v2/reports/generate", body(template_id="sales_overview"))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "TEMPLATE_NOT_FOUND"
    bad_date = api.post(
        "/v2/reports/generate", body(filters={"date_range": {"start": "2025-13-45", "end": "x"}})
    )
    assert bad_date.status_code == 400
    assert bad_date.json()["error"]["code"] == "DATE_FORMAT_INVALID"
    assert api.post("/v2/reports/generate", body(format="docx")).status_code == 400
    assert api.get("/v2/reports", limit=500).status_code == 400
    assert api.get("/v2/reports", created_after="yesterday").json()["error"]["code"] == (
        "DATE_FORMAT_INVALID"
    )


def test_reports_of_another_org_do_not_exist(server, server_dir):
    mine, theirs = Api(server, tenant(server_dir)), Api(server, tenant(server_dir))
    report_id = mine.post("/v2/reports/generate", body(format="json")).json()["report_id"]
    for path in (f"/v2/reports/{report_id}", f"/v2/reports/{report_id}/download",
                 "/v2/reports/rpt_doesnotexist"):  # fmt: skip
        response = theirs.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "REPORT_NOT_FOUND"
    batch = theirs.post("/v2/reports/batch", {"report_ids": [report_id]}).json()
    assert batch == {"reports": [], "not_found": [report_id]}
    assert theirs.get("/v2/reports").json()["pagination"]["total_count"] == 0


def test_scopes(server, server_dir):
    who = tenant(server_dir)
    assert httpx.get(server.url + "/v2/reports").status_code == 401
    reader = server.token(who.reader_id, who.reader_secret)  # analytics:read only
    denied = httpx.get(server.url + "/v2/reports", headers={"Authorization": f"Bearer {reader}"})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "AUTH_SCOPE_INSUFFICIENT"
    read_only = server.token(who.client_id, who.client_secret, scope="reports:read")
    headers = {"Authorization": f"Bearer {read_only}"}
    assert httpx.get(server.url + "/v2/reports", headers=headers).status_code == 200
    refused = httpx.post(server.url + "/v2/reports/generate", json=body(), headers=headers)
    assert refused.status_code == 403


def test_basic_plan_quota_and_idempotent_replay(server, server_dir):
    api = Api(server, tenant(server_dir, plan="basic"))
    first = api.post("/v2/reports/generate", body(format="json"), **{"Idempotency-Key": "k1"})
    assert first.status_code == 202
    for i in range(9):
        assert api.post("/v2/reports/generate", body(format="json", name=f"Report {i:03d}"))\
            .status_code == 202  # fmt: skip
    replay = api.post("/v2/reports/generate", body(format="json"), **{"Idempotency-Key": "k1"})
    assert replay.status_code == 202
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["report_id"] == first.json()["report_id"]
    over = api.post("/v2/reports/generate", body(format="json"))
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert over.headers["X-RateLimit-Limit"] == "10"
    assert int(over.headers["Retry-After"]) > 0
    reused = api.post("/v2/reports/generate", body(format="csv"), **{"Idempotency-Key": "k1"})
    assert reused.status_code == 409
    listed = api.get("/v2/reports", limit=4, page=3).json()
    assert listed["pagination"] == {"page": 3, "limit": 4, "total_pages": 3, "total_count": 10}
    assert len(listed["reports"]) == 2


def test_list_filters_and_batch(server, server_dir):
    api = Api(server, tenant(server_dir))
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    a = api.post("/v2/reports/generate", body(format="json")).json()["report_id"]
    b = api.post("/v2/reports/generate", body(format="json", template_id="llm_cost")).json()
    api.finished(a)
    api.finished(b["report_id"])
    by_template = api.get("/v2/reports", template_id="llm_cost").json()["reports"]
    assert [r["report_id"] for r in by_template] == [b["report_id"]]
    assert by_template[0]["file_size"].endswith("KB") or by_template[0]["file_size"].endswith("B")
    assert (
        len(api.get("/v2/reports", status="completed", created_after=since).json()["reports"]) == 2
    )
    assert api.get("/v2/reports", status="failed").json()["reports"] == []
    both = api.post("/v2/reports/batch", {"report_ids": [a, b["report_id"], "rpt_nope"]}).json()
    assert [r["report_id"] for r in both["reports"]] == [a, b["report_id"]]
    assert both["not_found"] == ["rpt_nope"]


def test_templates_and_schedules_as_resources(server, server_dir):
    api = Api(server, tenant(server_dir))
    invalid = api.post(
        "/v2/reports/templates",
        {
            "name": "Bad one",
            "sections": [
                {
                    "title": "x",
                    "display": "chart",
                    "chart_type": "pie",
                    "query": {"metrics": ["nope"]},
                }
            ],
        },
    )
    assert invalid.status_code == 400
    assert invalid.json()["error"]["validation_errors"]
    template = api.post(
        "/v2/reports/templates",
        {
            "name": "Consumers only",
            "sections": [
                {
                    "title": "Top consumers",
                    "display": "table",
                    "query": {"metrics": ["requests"], "dimensions": ["consumer_id"], "limit": 10},
                }
            ],
        },
    )
    assert template.status_code == 201
    template_id = template.json()["template_id"]
    ids = [t["template_id"] for t in api.get("/v2/reports/templates").json()["templates"]]
    assert (
        ids[:5]
        == ["api_overview", "endpoint_performance", "consumer_usage", "errors_slos", "llm_cost"]
        and template_id in ids
    )
    schedule = api.post(
        "/v2/reports/schedules",
        {
            "name": "Monday consumers",
            "cron": "0 9 * * 1",
            "timezone": "Europe/Berlin",
            "report": {"template_id": template_id, "format": "excel", "filters": {"range": "7d"}},
        },
    )
    assert schedule.status_code == 201, schedule.text
    schedule_id = schedule.json()["schedule_id"]
    assert schedule.json()["next_run_at"].endswith(("T07:00:00Z", "T08:00:00Z"))
    assert [s["schedule_id"] for s in api.get("/v2/reports/schedules").json()["schedules"]] == [
        schedule_id
    ]
    paused = api.post(f"/v2/reports/schedules/{schedule_id}/pause", None).json()
    assert paused["status"] == "paused" and paused["next_run_at"] is None
    resumed = api.post(f"/v2/reports/schedules/{schedule_id}/resume", None).json()
    assert resumed["status"] == "active" and resumed["next_run_at"]
    run = api.post(f"/v2/reports/schedules/{schedule_id}/run", None)
    assert run.status_code == 202
    report = api.finished(run.json()["report_id"])
    assert report["status"] == "completed" and report["schedule_id"] == schedule_id
    bad = api.post(
        "/v2/reports/schedules",
        {"name": "Bad", "cron": "0 25 * * *", "report": {"template_id": template_id}},
    )
    assert bad.status_code == 400
    deleted = httpx.delete(f"{server.url}/v2/reports/schedules/{schedule_id}", headers=api.headers)
    assert deleted.status_code == 204
    assert api.get(f"/v2/reports/schedules/{schedule_id}").status_code == 404
