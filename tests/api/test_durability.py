"""An event acknowledged with 202 survives ``kill -9`` and a restart, counted once."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.conftest import bearer
from tests.helpers import ServerProcess, eventually, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def total(server: ServerProcess, token: str) -> int:
    response = httpx.get(
        f"{server.url}/v2/analytics/overview?range=1h", headers=bearer(token), timeout=30
    )
    return int(response.json()["total_requests"])


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    # A long flush interval keeps acknowledged rows only in the log when the process dies.
    server = ServerProcess(
        tmp_path / "data", env={"METERLINE_FLUSH_INTERVAL": "60", "METERLINE_FLUSH_ROWS": "1000000"}
    )
    tenant = make_tenant(server.data_dir, "durable")
    server.start()
    try:
        acked = 0
        with server.client() as client:
            for batch in range(5):
                events = [
                    {"event_id": f"d{batch}-{i}", "path": "/pay", "status": 200, "latency_ms": 9}
                    for i in range(1000)
                ]
                response = client.post("/v2/events", json=events, headers=bearer(tenant.ingest_key))
                assert response.status_code == 202
                acked += response.json()["accepted"]
        server.kill9()
        server.start()
        token = server.token(tenant.reader_id, tenant.reader_secret)
        eventually(lambda: _equal(total(server, token), acked), timeout=30)
        # The dedup memory survives too: resending the last batch counts nothing.
        with server.client() as client:
            again = client.post("/v2/events", json=events, headers=bearer(tenant.ingest_key)).json()
        assert again["accepted"] == 0 and again["duplicates"] == 1000
        # A crash after the store insert but before the checkpoint must not double count:
        server.kill9()
        server.start()
        eventually(lambda: _equal(total(server, token), acked), timeout=30)
    finally:
        server.stop()
    # A clean stop flushes everything and leaves an empty log behind the checkpoint.
    server.start()
    try:
        assert total(server, token) == acked
    finally:
        server.stop()


def _equal(got: int, want: int) -> None:
    assert got == want
