"""Forecast backtest: hand-checkable series and the leakage guarantee."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from meterline.insight import forecast


def weekly(hours: int, noise: float = 0.0, seed: int = 1) -> np.ndarray:
    rng = random.Random(seed)
    return np.asarray(
        [
            100
            + 40 * math.sin(2 * math.pi * t / 24)
            + 20 * ((t // 24) % 7 >= 5)
            + rng.gauss(0, noise)
            for t in range(hours)
        ]
    )


def test_hourly_sums_half_hours_and_fills_gaps() -> None:
    epochs = [0, 1800, 3600, 3 * 3600 + 60]
    stamps, values = forecast.hourly(epochs, [1.0, 2.0, 4.0, 8.0])
    assert list(values) == [3.0, 4.0, 4.0, 8.0]
    assert [s.hour for s in stamps] == [0, 1, 2, 3]


def test_exactly_periodic_series_is_forecast_exactly() -> None:
    y = weekly(7 * 168)
    result = forecast.backtest(y, horizon=12)
    assert max(abs(p.yhat - y[p.target]) for p in result.predictions) < 1e-9
    assert result.accuracy == pytest.approx(1.0)
    assert result.origins == 336
    assert len(result.predictions) == sum(min(12, 336 - i) for i in range(336))


def test_no_prediction_scores_a_point_its_model_saw() -> None:
    y = weekly(7 * 168, noise=5.0)
    result = forecast.backtest(y, horizon=24)
    first_test = len(y) - 336
    assert all(p.target >= p.origin >= first_test for p in result.predictions)
    assert all(p.target == p.origin + p.horizon - 1 for p in result.predictions)
    # changing the future must not change an earlier forecast
    changed = y.copy()
    changed[-1] += 1e6
    again = forecast.backtest(changed, horizon=24)
    for a, b in zip(result.predictions, again.predictions, strict=True):
        if a.origin < len(y) - 1:
            assert a.yhat == b.yhat and a.hi95 == b.hi95


def test_intervals_are_calibrated_on_noise() -> None:
    result = forecast.backtest(weekly(8 * 168, noise=8.0, seed=5), horizon=24)
    assert 0.7 <= result.coverage80 <= 0.9
    assert 0.88 <= result.coverage95 <= 0.99
    assert all(p.lo95 <= p.lo80 <= p.yhat <= p.hi80 <= p.hi95 for p in result.predictions)


def test_level_correction_wins_after_a_level_drop() -> None:
    y = weekly(7 * 168, noise=2.0)
    y[-250:] *= 0.5  # a sudden, lasting drop inside the test period
    result = forecast.backtest(y, horizon=6)
    assert result.models_chosen.get("snaive168_level", 0) > result.models_chosen.get("snaive168", 0)


def test_too_short_a_series_is_refused() -> None:
    with pytest.raises(ValueError, match="need at least"):
        forecast.backtest(weekly(500))
