"""Scenario adjustments: parsing, validation and how multipliers combine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from meterline.errors import ValidationError
from meterline.planning.scenarios import Adjustment, parse_scenario, run
from meterline.planning.series import Forecast, Series

TODAY = date(2026, 12, 1)


def flat(metric: str, value: float, days: int = 10) -> Forecast:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    series = Series(metric, "day", [], np.zeros(40), start)
    rows = [
        {
            "timestamp": (start + timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "yhat": value,
            "lo80": value * 0.9,
            "hi80": value * 1.1,
            "lo95": value * 0.8,
            "hi95": value * 1.2,
        }
        for i in range(days)
    ]
    return Forecast(series, days, "snaive7", rows)


def test_step_ramp_and_open_ended_adjustments() -> None:
    campaign = Adjustment("campaign", date(2026, 12, 3), date(2026, 12, 4), 3.0)
    launch = Adjustment("launch", date(2026, 12, 6), None, 1.5)
    swing = Adjustment("swing", date(2026, 12, 1), date(2026, 12, 5), 0.6, "ramp")
    assert [campaign.factor(TODAY + timedelta(days=i)) for i in range(6)] == [1, 1, 3, 3, 1, 1]
    assert launch.factor(date(2027, 6, 1)) == 1.5
    assert [round(swing.factor(TODAY + timedelta(days=i)), 2) for i in range(6)] == [
        1.0,
        0.9,
        0.8,
        0.7,
        0.6,
        1.0,
    ]


def test_overlapping_adjustments_multiply_and_costs_follow() -> None:
    request = parse_scenario(
        {
            "horizon": 10,
            "adjustments": [
                {"start": "2026-12-03", "end": "2026-12-04", "multiplier": 3},
                {"start": "2026-12-04", "multiplier": 2},
            ],
            "cost_per_million_requests": 500,
        },
        TODAY,
        365,
    )
    result = run(
        request,
        flat("requests", 1000.0),
        flat("peak_requests_per_minute", 10.0),
        flat("cost_usd", 2.0),
        25.0,
        request.cost_per_million_requests,
    )
    factors = [r["multiplier"] for r in result["data"]]
    assert factors == [1, 1, 3, 6, 2, 2, 2, 2, 2, 2]
    summary = result["summary"]
    assert summary["requests"]["scenario"] == 1000 * sum(factors)
    assert summary["requests"]["hi80"] == pytest.approx(1100 * sum(factors))
    assert summary["peak_rpm"] == {
        "baseline": 10.0,
        "scenario": 60.0,
        "scenario_hi80": 66.0,
        "scenario_hi95": 72.0,
        "date": "2026-12-04",
    }
    capacity = summary["capacity"]
    assert capacity["headroom_rpm"] == -35.0
    assert capacity["crossing"] == {
        "expected": "2026-12-03",
        "likely": "2026-12-03",
        "possible": "2026-12-03",
    }
    assert capacity["days_over"] == 2
    cost = summary["cost_usd"]
    assert cost["requests"]["scenario"] == pytest.approx(1000 * sum(factors) * 500 / 1e6)
    assert cost["llm"] == {"baseline": 20.0, "scenario": 2.0 * sum(factors)}
    assert cost["total"]["scenario"] == pytest.approx(
        cost["llm"]["scenario"] + cost["requests"]["scenario"]
    )


def test_without_llm_spend_or_a_cost_rate_costs_are_what_is_known() -> None:
    request = parse_scenario(
        {"adjustments": [{"start": "2026-12-02", "multiplier": 2}]}, TODAY, 365
    )
    assert request.horizon == 30
    result = run(
        request, flat("requests", 10.0), flat("peak_requests_per_minute", 1.0), None, None, None
    )
    cost = result["summary"]["cost_usd"]
    assert cost["requests"] == {"baseline": None, "scenario": None}
    assert cost["total"] == {"baseline": 0.0, "scenario": 0.0}
    assert result["summary"]["capacity"]["days_over"] is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ([], None),
        ({}, ["adjustments"]),
        ({"adjustments": [{"start": "2026-12-02"}]}, ["adjustments[0].multiplier"]),
        ({"adjustments": [{"start": 5, "multiplier": 2}]}, ["adjustments[0].start"]),
        (
            {"adjustments": [{"start": "2026-12-02", "multiplier": True}]},
            ["adjustments[0].multiplier"],
        ),
        (
            {"adjustments": [{"start": "2026-12-02", "multiplier": 2e6}]},
            ["adjustments[0].multiplier"],
        ),
        (
            {"adjustments": [{"start": "2026-12-02", "multiplier": 2, "shape": "wave"}]},
            ["adjustments[0].shape"],
        ),
        (
            {"adjustments": [{"start": "2026-11-01", "end": "2026-11-30", "multiplier": 2}]},
            ["adjustments[0]"],
        ),
        ({"adjustments": ["x"], "horizon": 0}, ["adjustments[0]", "horizon"]),
        (
            {"adjustments": [{"start": "2026-12-02", "multiplier": 2, "days": 3}]},
            ["adjustments[0]"],
        ),
        (
            {"adjustments": [{"start": "2026-12-02", "multiplier": 2}], "capacity_rpm": -3},
            ["capacity_rpm"],
        ),
    ],
)
def test_bad_scenarios_name_every_field(body: object, fields: list[str] | None) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_scenario(body, TODAY, 365)
    if fields is None:
        assert caught.value.validation_errors is None
    else:
        assert sorted(e["field"] for e in caught.value.validation_errors or []) == fields
