"""A server killed mid-render: after its lease, a restarted server finishes the job once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import ServerProcess, eventually, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_job_of_a_killed_server_completes_once_after_restart(tmp_path: Path):
    who = make_tenant(tmp_path, "takeover", "professional")
    env = {"METERLINE_REPORTS_LEASE_SECONDS": "3", "METERLINE_REPORTS_POLL_INTERVAL": "0.1"}
    server = ServerProcess(tmp_path, env=env)
    server.start()
    token = server.token(who.client_id, who.client_secret)
    headers = {"Authorization": f"Bearer {token}"}
    killed_while_rendering = None
    try:
        for attempt in range(5):
            created = httpx.post(
                f"{server.url}/v2/reports/generate",
                headers=headers,
                json={"name": f"Takeover report {attempt}", "template_id": "api_overview",
                      "format": "pdf"},
            )  # fmt: skip
            report_id = created.json()["report_id"]
            deadline = time.monotonic() + 30
            state: dict = {}
            while time.monotonic() < deadline:
                state = httpx.get(f"{server.url}/v2/reports/{report_id}", headers=headers).json()
                if state["status"] != "processing" or state["progress"] >= 10:
                    break
                time.sleep(0.01)
            if state["status"] == "processing" and state["progress"] >= 10:
                server.kill9()  # claimed and rendering: the worker dies with its lease held
                killed_while_rendering = report_id
                break
        assert killed_while_rendering, "never caught a render in progress"
    finally:
        if server.proc and server.proc.poll() is None:
            server.stop()
    restarted = ServerProcess(tmp_path, env=env)
    restarted.start()
    try:
        token = restarted.token(who.client_id, who.client_secret)
        headers = {"Authorization": f"Bearer {token}"}

        def finished() -> dict:
            got = httpx.get(
                f"{restarted.url}/v2/reports/{killed_while_rendering}", headers=headers
            ).json()
            assert got["status"] == "completed", got
            return dict(got)

        report = eventually(finished, timeout=90, interval=0.3)
        download = httpx.get(
            f"{restarted.url}/v2/reports/{killed_while_rendering}/download", headers=headers
        )
        assert download.content.startswith(b"%PDF")
        listed = httpx.get(f"{restarted.url}/v2/reports", headers=headers).json()
        ids = [r["report_id"] for r in listed["reports"]]
        assert len(ids) == len(set(ids)) and killed_while_rendering in ids
        assert report["file_info"]["page_count"] >= 1
    finally:
        restarted.stop()
