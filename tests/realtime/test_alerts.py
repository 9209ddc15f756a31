"""Threshold alert lifecycle: only transitions produce messages."""

from __future__ import annotations

import pytest

from meterline.errors import ValidationError
from meterline.realtime import parse_subscribe
from meterline.realtime.alerts import AlertState, ThresholdAlert
from meterline.realtime.protocol import Threshold


def test_pending_then_firing_once_then_resolved_once() -> None:
    alert = ThresholdAlert(Threshold("error_rate", "above", 0.1, 30.0), "org|sub|error_rate")
    assert alert.observe(0.05, 1000.0, "s") is None
    assert alert.observe(0.2, 1001.0, "s") is None
    assert alert.state is AlertState.PENDING
    assert alert.observe(0.3, 1020.0, "s") is None
    fired = alert.observe(0.3, 1031.0, "s")
    assert fired is not None and fired["state"] == "firing" and fired["value"] == 0.3
    assert alert.observe(0.4, 1032.0, "s") is None
    resolved = alert.observe(0.01, 1040.0, "s")
    assert resolved is not None and resolved["state"] == "resolved"
    assert resolved["alert_id"] == fired["alert_id"]
    assert alert.observe(0.01, 1041.0, "s") is None


def test_condition_that_stops_while_pending_never_fires() -> None:
    alert = ThresholdAlert(Threshold("requests", "below", 10, 60.0), "k")
    assert alert.observe(3, 0.0, "s") is None
    assert alert.observe(30, 30.0, "s") is None
    assert alert.observe(3, 70.0, "s") is None
    assert alert.state is AlertState.PENDING


def test_keep_firing_for_rides_out_a_flapping_value() -> None:
    rule = Threshold("error_rate", "above", 0.1, 0.0, keep_firing_for=60.0)
    alert = ThresholdAlert(rule, "k")
    fired = alert.observe(0.5, 0.0, "s")
    assert fired is not None and fired["state"] == "firing"
    # Dips under the threshold shorter than a minute resolve nothing, fire nothing again.
    assert alert.observe(0.01, 10.0, "s") is None
    assert alert.observe(0.5, 20.0, "s") is None
    assert alert.observe(0.01, 30.0, "s") is None
    assert alert.observe(0.01, 80.0, "s") is None
    resolved = alert.observe(0.01, 91.0, "s")
    assert resolved is not None and resolved["state"] == "resolved"
    assert resolved["alert_id"] == fired["alert_id"]


def test_a_held_alert_does_not_resolve_before_its_hold_ends() -> None:
    alert = ThresholdAlert(Threshold("requests", "above", 2, 0.0), "k")
    fired = alert.observe(5, 100.0, "s")
    assert fired is not None and fired["state"] == "firing"
    alert.hold(101.25)
    # A node that took the alert over sees no traffic yet: no resolution while held.
    assert alert.observe(0, 100.5, "s") is None
    assert alert.state is AlertState.FIRING
    resolved = alert.observe(0, 101.5, "s")
    assert resolved is not None and resolved["state"] == "resolved"


def test_keep_firing_for_is_validated_and_echoed() -> None:
    spec = parse_subscribe(
        {
            "subscription_id": "a",
            "metrics": ["error_rate"],
            "alert_thresholds": {
                "error_rate": {"condition": "above", "value": 0.1, "keep_firing_for": "2m"}
            },
        }
    )
    assert spec.thresholds[0].keep_firing_for == 120.0
    assert spec.effective()["alert_thresholds"]["error_rate"]["keep_firing_for"] == "120s"
    with pytest.raises(ValidationError) as caught:
        parse_subscribe(
            {
                "subscription_id": "a",
                "metrics": ["error_rate"],
                "alert_thresholds": {
                    "error_rate": {"condition": "above", "value": 0.1, "keep_firing_for": "soon"}
                },
            }
        )
    fields = [e["field"] for e in caught.value.validation_errors or []]
    assert fields == ["alert_thresholds.error_rate.keep_firing_for"]
