"""End to end on a real server process: traffic with a spike is sent over HTTP, the
server's own background detection finds it, the anomaly and its alert appear in the API,
an SRE acknowledges and resolves it, and a real HTTP receiver and a real SMTP sink get
the signed webhook and the mail of each step."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from meterline.reports.delivery import webhook_signature
from tests.alerts.conftest import Receiver, Sink, minute_events
from tests.alerts.conftest import receiver as receiver  # noqa: F401  (fixture)
from tests.helpers import ServerProcess, Tenant, eventually, free_port, make_tenant
from tests.realtime.wsclient import connect, recv_json, recv_until, run_async, send

pytestmark = pytest.mark.slow
SECRET = "e2e-webhook-secret-0123"


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[Sink, int]]:
    found = Sink()
    controller = Controller(found, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield found, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def alerting_server(
    tmp_path_factory: pytest.TempPathFactory, sink: tuple[Sink, int]
) -> Iterator[tuple[ServerProcess, Tenant, Tenant]]:
    data = tmp_path_factory.mktemp("alerting")
    tenant = make_tenant(data, "alerting", "enterprise")
    other = make_tenant(data, "bystander", "enterprise")
    env = {
        "METERLINE_ALERTS_INTERVAL": "1",
        "METERLINE_ANOMALY_LAG": "0",
        "METERLINE_ANOMALY_LEARNING": "600",
        "METERLINE_ALERTS_RETRY_BACKOFF": "0.5",
        "METERLINE_SMTP_HOST": "127.0.0.1",
        "METERLINE_SMTP_PORT": str(sink[1]),
    }
    proc = ServerProcess(Path(data), env=env)
    proc.start()
    yield proc, tenant, other
    proc.stop()


@pytest.fixture
def client(alerting_server: tuple[ServerProcess, Tenant, Tenant]) -> Iterator[httpx.Client]:
    with alerting_server[0].client() as found:
        yield found


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and body["message"] and body["request_id"]
    return dict(body)


def test_spike_to_acknowledged_and_resolved_alert(
    alerting_server: tuple[ServerProcess, Tenant, Tenant],
    sink: tuple[Sink, int],
    receiver: Receiver,  # noqa: F811
    client: httpx.Client,
) -> None:
    server, tenant, _ = alerting_server
    admin = _auth(server.token(tenant.client_id, tenant.client_secret))
    reader = _auth(server.token(tenant.reader_id, tenant.reader_secret))
    receiver.failures = 1  # the first webhook call fails: it must be retried

    rule = {
        "name": "traffic anomalies",
        "type": "anomaly",
        "kinds": ["volume"],
        "min_score": 3,
        "notify": {"webhook": {"url": receiver.url, "secret": SECRET}, "email": ["oncall@x.io"]},
    }
    _error(
        client.post("/v2/alerts/rules", json=rule, headers=reader), 403, "AUTH_SCOPE_INSUFFICIENT"
    )
    created = client.post("/v2/alerts/rules", json=rule, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["notify"]["webhook"] == {"url": receiver.url, "secret_set": True}
    threshold = client.post(
        "/v2/alerts/rules",
        json={
            "name": "busy",
            "metric": "requests",
            "condition": "above",
            "value": 200,
            "duration": "0s",
            "window": "5m",
        },
        headers=admin,
    )
    assert threshold.status_code == 201, threshold.text

    # an hour of steady traffic, then a burst two minutes ago, sent over HTTP
    t = int(time.time()) // 60
    events: list[dict[str, Any]] = []
    for m in range(t - 60, t):
        events += minute_events(m, 30 + m % 3, consumer_id="c1")
    events += minute_events(t - 2, 400, consumer_id="c1")
    for i, e in enumerate(events):
        e["event_id"] = f"e2e-{i}"
    sent = client.post("/v2/events", json=events, headers=_auth(tenant.ingest_key))
    assert sent.status_code == 202 and sent.json()["accepted"] == len(events), sent.text

    def spike_seen() -> dict[str, Any]:
        found = client.get("/v2/anomalies", params={"kind": "volume"}, headers=reader).json()
        spikes = [a for a in found["data"] if a["direction"] == "spike" and a["where"] == {}]
        assert spikes
        return dict(spikes[0])

    anomaly = eventually(spike_seen, timeout=60, interval=0.5)
    assert anomaly["metric"] == "requests" and anomaly["observed"] >= 400
    assert anomaly["band"]["upper"] < anomaly["observed"] and anomaly["score"] >= 3
    page = client.get(
        "/v2/anomalies", params={"kind": "volume", "limit": 1, "page": 1}, headers=reader
    ).json()
    assert page["pagination"]["limit"] == 1 and len(page["data"]) == 1
    assert client.get(f"/v2/anomalies/{anomaly['anomaly_id']}", headers=reader).json() == anomaly

    def alert_open() -> dict[str, Any]:
        listed = client.get(
            "/v2/alerts", params={"source": "anomaly", "kind": "volume"}, headers=reader
        ).json()["data"]
        mine = [a for a in listed if a["anomaly_id"] == anomaly["anomaly_id"]]
        assert mine
        return dict(mine[0])

    alert = eventually(alert_open, timeout=30, interval=0.5)
    assert alert["status"] == "open"
    alert_id = alert["alert_id"]

    def threshold_open() -> dict[str, Any]:
        listed = client.get("/v2/alerts", params={"source": "threshold"}, headers=reader)
        assert listed.json()["data"]
        return dict(listed.json()["data"][0])

    busy = eventually(threshold_open, timeout=30, interval=0.5)
    assert busy["rule_id"] == threshold.json()["rule_id"] and busy["observed"] > 200

    _error(
        client.post(f"/v2/alerts/{alert_id}/acknowledge", headers=reader),
        403,
        "AUTH_SCOPE_INSUFFICIENT",
    )
    acked = client.post(f"/v2/alerts/{alert_id}/acknowledge", headers=admin)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    _error(
        client.post(f"/v2/alerts/{alert_id}/acknowledge", headers=admin),
        409,
        "ALERT_STATE_CONFLICT",
    )
    resolved = client.post(
        f"/v2/alerts/{alert_id}/resolve", json={"note": "autoscaler caught up"}, headers=admin
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolution"] == (
        "autoscaler caught up"
    )
    verdict = client.post(
        f"/v2/alerts/{alert_id}/feedback", json={"verdict": "true_positive"}, headers=admin
    )
    assert verdict.status_code == 200 and verdict.json()["sensitivity"]["sensitivity"] == 0.55
    levels = client.get("/v2/alerts/sensitivity", headers=reader).json()["data"]
    assert {
        "kind": "volume",
        "sensitivity": 0.55,
        "true_positives": 1,
        "false_positives": 0,
    } in levels

    def notified() -> list[str]:
        events = [
            (h, b)
            for h, b in receiver.calls
            if b and alert_id in b.decode() and h.get("x-meterline-signature")
        ]
        kinds = [h["x-meterline-event"] for h, _ in events]
        assert {"alert.opened", "alert.acknowledged", "alert.resolved"} <= set(kinds)
        for headers, body in events:
            stamp = int(headers["x-meterline-signature"].split(",")[0].removeprefix("t="))
            assert headers["x-meterline-signature"] == webhook_signature(SECRET, stamp, body)
        return kinds

    eventually(notified, timeout=30, interval=0.5)

    # the first call was answered 503 and retried: the same delivery id came twice
    def retried() -> None:
        deliveries = [h["x-meterline-delivery"] for h, _ in receiver.calls]
        assert deliveries[0] in deliveries[1:]

    eventually(retried, timeout=30, interval=0.5)

    def mailed() -> list[str]:
        subjects = [m["Subject"] for rcpts, m in sink[0].messages if "oncall@x.io" in rcpts]
        assert any(s.startswith("[Meterline] RESOLVED") for s in subjects)
        return subjects

    subjects = eventually(mailed, timeout=30, interval=0.5)
    assert any(s.startswith("[Meterline] OPENED: request volume spike") for s in subjects)
    detail = client.get(f"/v2/alerts/{alert_id}", headers=reader).json()
    assert {n["status"] for n in detail["notifications"]} == {"sent"}


def test_errors_are_in_the_design_format(
    alerting_server: tuple[ServerProcess, Tenant, Tenant], client: httpx.Client
) -> None:
    server, tenant, _ = alerting_server
    admin = _auth(server.token(tenant.client_id, tenant.client_secret))
    bad = _error(
        client.post(
            "/v2/alerts/rules",
            json={"name": "x", "metric": "nope", "condition": "sideways", "value": "high"},
            headers=admin,
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert {p["field"] for p in bad["validation_errors"]} >= {"metric", "condition", "value"}
    rate = _error(
        client.post(
            "/v2/alerts/rules",
            json={"name": "x", "metric": "error_rate", "condition": "above", "value": 5},
            headers=admin,
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert "0.05" in rate["validation_errors"][0]["message"]
    _error(client.get("/v2/anomalies?kind=bogus", headers=admin), 400, "VALIDATION_ERROR")
    _error(client.get("/v2/anomalies?since=yesterday", headers=admin), 400, "DATE_FORMAT_INVALID")
    _error(client.get("/v2/alerts?status=closed", headers=admin), 400, "VALIDATION_ERROR")
    _error(client.get("/v2/alerts/alr_nope", headers=admin), 404, "ALERT_NOT_FOUND")
    _error(client.get("/v2/alerts/rules/rul_nope", headers=admin), 404, "RULE_NOT_FOUND")
    _error(client.get("/v2/anomalies"), 401, "AUTH_TOKEN_MISSING")

    made = client.post(
        "/v2/alerts/rules",
        json={"name": "slow", "metric": "latency_p95", "condition": "above", "value": 800},
        headers=admin,
    ).json()
    changed = client.patch(
        f"/v2/alerts/rules/{made['rule_id']}", json={"value": 900, "enabled": False}, headers=admin
    )
    assert changed.status_code == 200 and changed.json()["value"] == 900
    assert changed.json()["enabled"] is False and changed.json()["name"] == "slow"
    _error(
        client.patch(
            f"/v2/alerts/rules/{made['rule_id']}", json={"type": "anomaly"}, headers=admin
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert client.delete(f"/v2/alerts/rules/{made['rule_id']}", headers=admin).status_code == 204
    _error(client.get(f"/v2/alerts/rules/{made['rule_id']}", headers=admin), 404, "RULE_NOT_FOUND")


def test_live_stream_threshold_alerts_are_recorded(
    alerting_server: tuple[ServerProcess, Tenant, Tenant], client: httpx.Client
) -> None:
    server, tenant, other_tenant = alerting_server
    reader = server.token(tenant.reader_id, tenant.reader_secret)
    url = f"ws://127.0.0.1:{server.port}/v2/stream?token={reader}"

    async def scenario() -> dict[str, Any]:
        ws = await connect(url)
        await recv_json(ws)
        await send(
            ws,
            {
                "action": "subscribe",
                "subscription_id": "watch",
                "metrics": ["requests"],
                "filters": {"time_window": "1m", "endpoints": ["/streamed"]},
                "alert_thresholds": {
                    "requests": {"condition": "above", "value": 5, "duration": "0s"}
                },
            },
        )
        now = int(time.time()) // 60
        burst = minute_events(now, 20, path="/streamed")
        for i, e in enumerate(burst):
            e["event_id"] = f"stream-{i}"
            e["timestamp"] = int(time.time() * 1000)
        client.post("/v2/events", json=burst, headers=_auth(tenant.ingest_key))
        fired = await recv_until(ws, lambda m: m["type"] == "alert" and m["state"] == "firing")
        await ws.close()
        return fired

    fired = run_async(scenario())

    def recorded() -> dict[str, Any]:
        listed = client.get(
            "/v2/alerts", params={"source": "stream"}, headers=_auth(reader)
        ).json()["data"]
        assert listed
        return dict(listed[0])

    alert = eventually(recorded, timeout=30, interval=0.5)
    other = _auth(server.token(other_tenant.client_id, other_tenant.client_secret))
    _error(client.get(f"/v2/alerts/{alert['alert_id']}", headers=other), 404, "ALERT_NOT_FOUND")
    assert client.get("/v2/alerts", headers=other).json()["data"] == []
    assert client.get("/v2/anomalies", headers=other).json()["data"] == []
    _error(
        client.post(f"/v2/alerts/{alert['alert_id']}/resolve", headers=other),
        404,
        "ALERT_NOT_FOUND",
    )
    assert alert["status"] == "open" and alert["metric"] == "requests"
    assert alert["where"] == {"subscription_id": "watch"}
    assert alert["observed"] == fired["value"] and alert["threshold"] == 5
