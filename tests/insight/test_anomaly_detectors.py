"""The anomaly detectors on hand-made minute rows: seasonality, level shifts, missing
history, uncertain rates, sensitivity, region mix and consumers' endpoint use."""

from __future__ import annotations

from typing import Any

from meterline.insight.anomalies import MinuteSettings, z_for
from meterline.insight.anomalies.detectors import (
    geography_findings,
    minute_findings,
    peer_minutes,
    usage_findings,
)

M = 30_000_000  # an arbitrary minute index
DAY, WEEK = 1440, 7 * 1440
Z = dict.fromkeys(("volume", "error_rate", "latency"), z_for(0.5))


def row(requests: float, errors: float = 0.0, p95: float = 100.0) -> dict[str, Any]:
    return {"requests": requests, "errors": errors, "latency_p95": p95}


def fill(rows: dict[int, Any], start: int, end: int, value: Any) -> None:
    for t in range(start, end):
        rows[t] = value(t) if callable(value) else value


def wobble(t: int, level: float) -> dict[str, Any]:
    return row(level + (t % 5) - 2, errors=level * 0.01)


def kinds(found: list[Any]) -> list[tuple[str, str]]:
    return [(f.kind, f.direction) for f in found]


def test_a_steady_minute_is_quiet_and_a_burst_is_a_spike_with_its_band() -> None:
    rows: dict[int, Any] = {}
    fill(rows, M - 60, M, lambda t: wobble(t, 40))
    rows[M] = row(40)
    assert minute_findings(rows, M, Z, {}) == []
    rows[M] = row(200)
    (found,) = minute_findings(rows, M, Z, {"route": "/a"})
    assert (found.kind, found.direction, found.observed) == ("volume", "spike", 200)
    assert found.lower < found.expected < found.upper < 200 and found.score > 4
    assert found.where == {"route": "/a"} and "/a" in found.message


def test_a_drop_to_nothing_is_reported() -> None:
    rows: dict[int, Any] = {}
    fill(rows, M - 60, M, lambda t: wobble(t, 100))
    (found,) = minute_findings(rows, M, Z, {})  # no row: no events this minute
    assert (found.kind, found.direction, found.observed) == ("volume", "drop", 0.0)


def test_the_daily_rush_is_expected_when_it_comes_every_day() -> None:
    """Traffic jumps from 20 to 100/min at the same minute every day: the seasonal
    baseline expects it; the trailing hour alone would call it a spike."""
    rows: dict[int, Any] = {}
    for lag in (DAY, WEEK):
        fill(rows, M - lag - 60, M - lag, lambda t: wobble(t, 20))
        fill(rows, M - lag, M - lag + 10, lambda t: wobble(t, 100))
    fill(rows, M - 60, M, lambda t: wobble(t, 20))
    rows[M] = row(100)
    assert minute_findings(rows, M, Z, {}) == []
    without_seasons = {t: r for t, r in rows.items() if t >= M - 60}
    assert kinds(minute_findings(without_seasons, M, Z, {})) == [("volume", "spike")]


def test_a_busier_day_all_along_is_a_level_shift_not_a_spike() -> None:
    rows: dict[int, Any] = {}
    fill(rows, M - DAY - 60, M - DAY + 6, lambda t: wobble(t, 50))
    fill(rows, M - 60, M, lambda t: wobble(t, 100))
    rows[M] = row(100)
    assert minute_findings(rows, M, Z, {}) == []
    rows[M] = row(300)
    assert kinds(minute_findings(rows, M, Z, {})) == [("volume", "spike")]


def test_missing_history_is_not_read_as_zero_traffic() -> None:
    """The server was down a day ago (no rows at all there): the week-ago season and the
    trailing hour decide, so normal traffic is not a spike against zeros."""
    rows: dict[int, Any] = {}
    fill(rows, M - WEEK - 60, M - WEEK + 6, lambda t: wobble(t, 50))
    fill(rows, M - 60, M, lambda t: wobble(t, 50))
    rows[M] = row(52)
    peers = peer_minutes(rows, M, MinuteSettings())
    assert all(M - WEEK - 5 <= t <= M - WEEK + 5 for t, _ in peers)
    assert minute_findings(rows, M, Z, {}) == []


def test_too_little_history_reports_nothing() -> None:
    rows = {M - 3: row(10), M - 2: row(10), M - 1: row(10), M: row(500)}
    assert minute_findings(rows, M, Z, {}) == []


def test_error_rate_needs_enough_requests_to_be_sure() -> None:
    """40 % errors against a 10 % baseline: over 10 requests it may be chance, over 100
    it is not."""
    rows: dict[int, Any] = {}
    fill(rows, M - 60, M, lambda t: row(100, errors=10))
    rows[M] = row(10, errors=4)
    assert [f for f in minute_findings(rows, M, Z, {}) if f.kind == "error_rate"] == []
    rows[M] = row(100, errors=40)
    (found,) = [f for f in minute_findings(rows, M, Z, {}) if f.kind == "error_rate"]
    assert found.observed == 0.4 and found.expected == 0.1 and found.upper < 0.4


def test_p95_latency_rise_needs_enough_requests() -> None:
    rows: dict[int, Any] = {}
    fill(rows, M - 60, M, lambda t: row(100, p95=100 + t % 7))
    rows[M] = row(100, p95=900)
    (found,) = [f for f in minute_findings(rows, M, Z, {}) if f.kind == "latency"]
    assert found.metric == "latency_p95" and found.observed == 900 and found.upper < 900
    rows[M] = row(5, p95=900)
    assert [f for f in minute_findings(rows, M, Z, {}) if f.kind == "latency"] == []


def test_sensitivity_sets_how_far_is_unusual() -> None:
    rows: dict[int, Any] = {}
    fill(rows, M - 60, M, lambda t: wobble(t, 100))
    rows[M] = row(135)  # about 3.5 Poisson sigmas up
    low = dict.fromkeys(Z, z_for(0.1))
    high = dict.fromkeys(Z, z_for(0.9))
    assert minute_findings(rows, M, low, {}) == []
    assert kinds(minute_findings(rows, M, high, {})) == [("volume", "spike")]
    assert z_for(0.0) == 6.0 and z_for(1.0) == 2.0


def test_a_new_region_shifts_the_mix() -> None:
    baseline = {"US": 600.0, "DE": 400.0}
    assert geography_findings({"US": 60.0, "DE": 40.0}, baseline, M, 4.0) == []
    (found,) = geography_findings({"US": 60.0, "DE": 40.0, "JP": 50.0}, baseline, M, 4.0)
    assert found.where == {"region": "JP"} and found.expected == 0.0
    assert found.observed == round(50 / 150, 4) and found.direction == "shift"


def test_a_consumer_leaving_its_own_pattern() -> None:
    history = {"c1": {"/a": 900.0, "/b": 100.0}, "c2": {"/a": 50.0}}
    same = {"c1": {"/a": 90.0, "/b": 10.0}}
    assert usage_findings(same, history, M, 4.0) == []
    moved = {"c1": {"/a": 10.0, "/b": 90.0}}
    (found,) = usage_findings(moved, history, M, 4.0)
    assert found.metric == "endpoint_mix" and found.where == {"consumer_id": "c1"}
    assert found.observed > 0.25 and "/b" in found.message
    new = {"c2": {"/a": 40.0, "/admin": 10.0}, "c9": {"/x": 500.0}}
    (found,) = usage_findings(new, history, M, 4.0)  # c9 has no history to depart from
    assert found.where == {"consumer_id": "c2", "route": "/admin"} and found.direction == "new"
