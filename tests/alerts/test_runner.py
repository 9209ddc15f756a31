"""Continuous detection and alerting over the embedded store: a spike in real rollups
opens anomalies and alerts, rules fire and clear, feedback moves sensitivity."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from meterline.alerts import AlertRunner
from meterline.reports.delivery import webhook_signature
from tests.alerts.conftest import Alerting, minute_events, smtp_config


def history(a: Alerting, first: int, last: int) -> None:
    """Steady traffic: c1 calls /a about 30 times a minute (one 500 each), c2 calls /b 10."""
    events: list[dict[str, Any]] = []
    for m in range(first, last):
        events += minute_events(m, 30 + m % 3 - 1, consumer_id="c1")
        events += minute_events(m, 1, consumer_id="c1", status=500)
        events += minute_events(m, 10, path="/b", consumer_id="c2", region="DE")
    a.ingest(events)


def spike(a: Alerting, minute: int) -> None:
    """A burst on /a, a never-seen endpoint for c1, and traffic from a new region."""
    a.ingest(
        minute_events(minute, 300, consumer_id="c1")
        + minute_events(minute, 20, path="/new-endpoint", consumer_id="c1")
        + minute_events(minute, 100, consumer_id="c3", region="JP")
    )


def now_minute() -> int:
    return int(time.time()) // 60


def test_spike_opens_anomalies_and_alerts(make_alerting, receiver, smtp) -> None:
    sink, port = smtp
    t = now_minute()
    a = make_alerting(t * 60 + 5)
    a.service.notifications.config = a.service.config.__class__(
        **{**_fields(a.service.config), "smtp": smtp_config(port)}
    )
    secret = "s3cret-for-the-hook"
    a.service.rules.create(
        a.org_id,
        {
            "name": "traffic anomalies",
            "type": "anomaly",
            "kinds": ["volume"],
            "notify": {"webhook": {"url": receiver.url, "secret": secret}, "email": ["sre@x.io"]},
        },
    )
    history(a, t - 70, t)
    spike(a, t - 2)

    done = a.runner.run_once()
    assert done["orgs"] == 1 and done["findings"] > 0

    volume = a.service.history.list(a.org_id, kind="volume")["data"]
    total = [v for v in volume if v["where"] == {}]
    assert len(total) == 1
    found = total[0]
    steady = 30 + (t - 2) % 3 - 1 + 1 + 10
    assert found["direction"] == "spike" and found["observed"] == 420.0 + steady
    assert found["band"]["lower"] <= found["expected"] <= found["band"]["upper"] < 420
    assert 35 <= found["expected"] <= 45 and found["score"] > 4
    assert found["started_at"].endswith(":00Z")
    assert any(v["where"] == {"route": "/a"} for v in volume)

    geo = a.service.history.list(a.org_id, kind="geography")["data"]
    assert [g["where"] for g in geo] == [{"region": "JP"}]
    usage = a.service.history.list(a.org_id, kind="usage_pattern", consumer="c1")["data"]
    assert {"consumer_id": "c1", "route": "/new-endpoint"} in [u["where"] for u in usage]

    alerts = a.service.book.list(a.org_id, source="anomaly", status="open")["data"]
    kinds = {(x["kind"], tuple(sorted(x["where"].items()))) for x in alerts}
    assert ("volume", ()) in kinds and ("geography", (("region", "JP"),)) in kinds

    # a second round over the same minutes neither duplicates episodes nor alerts, and
    # an episode resolved by hand is not reopened while it goes on
    a.runner.run_once()
    assert len(a.service.history.list(a.org_id, kind="volume")["data"]) == len(volume)
    assert len(a.service.book.list(a.org_id, source="anomaly")["data"]) == len(alerts)
    geo_alert = next(x for x in alerts if x["kind"] == "geography")
    a.service.resolve(a.org_id, geo_alert["alert_id"], "sre", "known: JP launch")
    a.ingest(minute_events(t, 41, consumer_id="c1"))
    a.clock.advance(60)  # a minute later the region window still holds the JP burst
    a.runner.run_once()
    (geo,) = a.service.history.list(a.org_id, kind="geography")["data"]
    assert geo["minutes"] == 2  # the same episode, seen again
    geo_alerts = a.service.book.list(a.org_id, kind="geography")["data"]
    assert [x["status"] for x in geo_alerts] == ["resolved"]

    # only the volume alerts were routed by the anomaly rule: webhook + e-mail each
    opened = [b for b in receiver.bodies() if b["event"] == "alert.opened"]
    volume_alerts = [x for x in alerts if x["kind"] == "volume"]
    assert {b["alert"]["alert_id"] for b in opened} == {x["alert_id"] for x in volume_alerts}
    headers, body = receiver.calls[0]
    stamp = int(headers["x-meterline-signature"].split(",")[0].removeprefix("t="))
    assert headers["x-meterline-signature"] == webhook_signature(secret, stamp, body)
    expected_mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    assert headers["x-meterline-signature"].endswith(expected_mac.hexdigest())
    assert headers["x-meterline-event"] == "alert.opened"
    mails = [m for rcpts, m in sink.messages if "sre@x.io" in rcpts]
    assert len(mails) == len(volume_alerts)
    assert mails[0]["Subject"].startswith("[Meterline] OPENED: request volume spike")
    assert "How unusual" in mails[0].get_content()

    # a false positive lowers the volume sensitivity, and with it what counts as unusual
    verdict = a.service.book.feedback(
        a.org_id, volume_alerts[0]["alert_id"], "false_positive", "deploy", "sre"
    )
    assert verdict["sensitivity"]["sensitivity"] == 0.4
    assert a.service.book.sensitivities(a.org_id)["volume"] == 0.4
    assert a.service.book.sensitivities(a.org_id)["latency"] == 0.5

    # not seen again for longer than resolve_after: the spike's alerts resolve, say so
    a.clock.advance(a.service.config.resolve_after + 60)
    a.runner.run_once()
    for x in volume_alerts:
        assert a.service.book.get(a.org_id, x["alert_id"])["status"] == "resolved"
    resolved = [b for b in receiver.bodies() if b["event"] == "alert.resolved"]
    assert {b["alert"]["alert_id"] for b in resolved} == {x["alert_id"] for x in volume_alerts}


def _fields(config: Any) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def test_nothing_is_reported_while_learning(make_alerting) -> None:
    t = now_minute()
    a = make_alerting(t * 60 + 5, learning=3 * 3600.0)
    history(a, t - 70, t - 2)
    spike(a, t - 2)
    a.runner.run_once()
    assert a.service.history.list(a.org_id)["data"] == []
    assert a.service.book.list(a.org_id)["data"] == []


def test_threshold_rule_holds_for_its_duration_then_clears(make_alerting, receiver) -> None:
    t = now_minute()
    a = make_alerting(t * 60 + 5)
    rule = a.service.rules.create(
        a.org_id,
        {
            "name": "busy /a",
            "metric": "requests",
            "condition": "above",
            "value": 200,
            "duration": "2m",
            "window": "10m",
            "filters": {"route": "/a"},
            "notify": {"webhook": {"url": receiver.url}},
        },
    )
    history(a, t - 20, t - 2)
    spike(a, t - 2)
    a.runner.run_once()
    assert a.service.book.list(a.org_id, source="threshold")["data"] == []  # pending

    a.clock.advance(150)
    a.runner.run_once()
    (alert,) = a.service.book.list(a.org_id, source="threshold")["data"]
    assert alert["status"] == "open" and alert["rule_id"] == rule["rule_id"]
    assert alert["where"] == {"route": "/a"} and alert["observed"] > 200
    assert alert["condition"] == "above" and alert["threshold"] == 200

    acked = a.service.acknowledge(a.org_id, alert["alert_id"], "sre")
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "sre"

    a.clock.advance(1200)  # the window holds no traffic any more
    a.runner.run_once()
    (alert,) = a.service.book.list(a.org_id, source="threshold")["data"]
    assert alert["status"] == "resolved" and alert["resolved_by"] == "system"
    events = [b["event"] for b in receiver.bodies()]
    assert events == ["alert.opened", "alert.acknowledged", "alert.resolved"]
    assert "x-meterline-signature" not in receiver.calls[0][0]  # no secret, no signature

    # past the retention, resolved alerts and their notifications are swept
    a.clock.advance(a.service.config.retention_days * 86400 + 3600)
    a.runner.run_once()
    assert a.service.book.list(a.org_id, source="threshold")["data"] == []
    assert a.service.notifications.for_alert(a.org_id, alert["alert_id"]) == []
    assert a.service.rules.get(a.org_id, rule["rule_id"])["name"] == "busy /a"


def test_stream_alerts_are_recorded(make_alerting) -> None:
    a = make_alerting(time.time())
    frame = {
        "type": "alert",
        "alert_id": "abc123",
        "subscription_id": "mon",
        "metric": "error_rate",
        "state": "firing",
        "condition": "above",
        "threshold": 0.05,
        "value": 0.2,
        "duration": "0s",
    }
    a.runner.stream_alert(a.org_id, frame)
    a.runner.run_once()
    (alert,) = a.service.book.list(a.org_id, source="stream")["data"]
    assert alert["status"] == "open" and alert["observed"] == 0.2
    assert alert["where"] == {"subscription_id": "mon"}
    a.runner.stream_alert(a.org_id, {**frame, "state": "resolved", "value": 0.01})
    a.runner.run_once()
    (alert,) = a.service.book.list(a.org_id, source="stream")["data"]
    assert alert["status"] == "resolved"

    # firing state lives in the server's memory: a restart resolves what was left open
    a.runner.stream_alert(a.org_id, {**frame, "alert_id": "def456"})
    a.runner.run_once()
    restarted = AlertRunner(a.service, a.runner.queries)
    restarted.start()
    restarted.stop()
    statuses = [x["status"] for x in a.service.book.list(a.org_id, source="stream")["data"]]
    assert statuses == ["resolved", "resolved"]


def test_deleting_a_rule_resolves_its_alert(make_alerting) -> None:
    t = now_minute()
    a = make_alerting(t * 60 + 5)
    rule = a.service.rules.create(
        a.org_id,
        {"name": "any", "metric": "requests", "condition": "above", "value": 1, "window": "5m"},
    )
    history(a, t - 3, t)
    a.runner.run_once()
    (alert,) = a.service.book.list(a.org_id, source="threshold", status="open")["data"]
    a.service.rules.delete(a.org_id, rule["rule_id"])
    a.runner.run_once()
    done = a.service.book.get(a.org_id, alert["alert_id"])
    assert done["status"] == "resolved" and done["resolution"] == "the rule was deleted or disabled"
