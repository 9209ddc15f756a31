"""Daily forecaster: exact on an exactly weekly series, calibrated on noise, leak-free."""

from __future__ import annotations

import random

import numpy as np
import pytest

from meterline.insight import daily


def weekly(days: int, noise: float = 0.0, trend: float = 0.0, seed: int = 3) -> np.ndarray:
    rng = random.Random(seed)
    return np.asarray(
        [100 + 30 * (d % 7 >= 5) + trend * d + rng.gauss(0, noise) for d in range(days)]
    )


def test_daily_sums_into_utc_days_and_fills_gaps() -> None:
    stamps, values = daily.daily([0, 3600, 86400 * 2 + 5], [1.0, 2.0, 4.0])
    assert list(values) == [3.0, 3.0, 4.0]
    assert [s.day for s in stamps] == [1, 2, 3]


def test_an_exactly_weekly_series_is_forecast_exactly() -> None:
    y = weekly(120)
    result = daily.backtest(y, horizon=7)
    assert max(abs(p.yhat - y[p.target]) for p in result.predictions) < 1e-6
    assert result.accuracy == pytest.approx(1.0)
    ahead = daily.forecast_ahead(y, horizon=14)
    assert [p.yhat for p in ahead] == pytest.approx(
        [y[120 + k - 7 * (1 + k // 7)] for k in range(14)]
    )


def test_no_prediction_scores_a_day_its_model_saw() -> None:
    y = weekly(140, noise=4.0)
    result = daily.backtest(y, horizon=14)
    assert all(p.target >= p.origin >= 140 - 56 for p in result.predictions)
    changed = y.copy()
    changed[-1] += 1e5
    again = daily.backtest(changed, horizon=14)
    for a, b in zip(result.predictions, again.predictions, strict=True):
        if a.origin < len(y) - 1:
            assert a.yhat == b.yhat and a.hi95 == b.hi95


@pytest.mark.slow
def test_intervals_are_calibrated_on_noise_and_ordered() -> None:
    # 56 days of test are few: average the coverage over three noise draws
    results = [daily.backtest(weekly(200, noise=8.0, seed=s), horizon=7) for s in (11, 12, 13)]
    assert 0.7 <= float(np.mean([r.coverage80 for r in results])) <= 0.9
    assert 0.87 <= float(np.mean([r.coverage95 for r in results])) <= 0.99
    for result in results:
        assert all(p.lo95 <= p.lo80 <= p.yhat <= p.hi80 <= p.hi95 for p in result.predictions)


def test_a_trend_is_carried_into_the_far_future() -> None:
    y = weekly(150, noise=1.0, trend=2.0)
    ahead = daily.forecast_ahead(y, horizon=60)
    assert ahead[0].model in ("ets", "theta")
    # a year-like horizon keeps growing (damped) and widens, never narrows
    assert ahead[-1].yhat > y[-7:].mean() + 20
    widths = [p.hi95 - p.lo95 for p in ahead]
    assert widths[-1] > widths[0]


def test_too_short_a_history_is_refused() -> None:
    with pytest.raises(ValueError, match="need at least 28 days"):
        daily.forecast_ahead(weekly(20))
    with pytest.raises(ValueError, match="need at least"):
        daily.backtest(weekly(60))
