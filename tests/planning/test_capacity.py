"""Capacity crossings read off a forecast's point and upper bounds."""

from __future__ import annotations

from meterline.planning.capacity import crossings, headroom, status

ROWS = [
    {"timestamp": "d1", "yhat": 50.0, "hi80": 60.0, "hi95": 70.0},
    {"timestamp": "d2", "yhat": 80.0, "hi80": 95.0, "hi95": 110.0},
    {"timestamp": "d3", "yhat": 101.0, "hi80": 120.0, "hi95": 140.0},
]


def test_crossings_expected_likely_possible() -> None:
    assert crossings(ROWS, 100.0) == {"expected": "d3", "likely": "d3", "possible": "d2"}
    assert crossings(ROWS, 65.0) == {"expected": "d2", "likely": "d2", "possible": "d1"}
    assert crossings(ROWS, 500.0) == {"expected": None, "likely": None, "possible": None}
    assert crossings(ROWS, None) == {"expected": None, "likely": None, "possible": None}


def test_status_and_headroom() -> None:
    assert status(None, 10, crossings(ROWS, None)) == "unconfigured"
    assert status(40.0, 45, crossings(ROWS, 40.0)) == "over"
    assert status(100.0, 45, crossings(ROWS, 100.0)) == "at_risk"
    assert status(130.0, 45, crossings(ROWS, 130.0)) == "watch"
    assert status(500.0, 45, crossings(ROWS, 500.0)) == "ok"
    assert headroom(200.0, 150.0) == {
        "headroom_rpm": 50.0,
        "headroom_pct": 25.0,
        "utilisation": 0.75,
    }
    assert headroom(None, 1.0)["headroom_rpm"] is None
