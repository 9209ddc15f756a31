"""Daily forecasts with weekly seasonality and trend, calibrated intervals, and a backtest.

Candidate models, refitted at every daily origin:

* ``snaive7``: the weekly seasonal naive forecast (``statsforecast``);
* ``snaive7_level``: the weekly seasonal naive scaled by how the last three days compare
  with the same days a week earlier, the correction fading with the horizon (time
  constant one week) — it follows a sudden change of level without losing the week;
* ``ets``: exponential smoothing with additive damped trend and additive 7-day season
  (``statsforecast`` ETS(A,Ad,A)) — it carries a growth trend over long horizons (a
  month, a year of costs) without letting it run away;
* ``theta``: ``statsforecast``'s dynamic optimised Theta with a 7-day season
  (seasonally adjusted), good on trending series; on the dev series it forecast as
  well as trying every Theta variant, at half the cost.

ETS and Theta are fitted on at most the last 26 weeks, which bounds their cost.

At each origin the model with the lowest absolute error over the forecasts of the
previous four weeks whose targets were already observed is chosen, per series.
Intervals are conformal: for each horizon, quantiles of the log-ratio between actual
and forecast over the previous eight weeks of forecasts of the chosen model; horizons
with too few such forecasts (the far future) take the widest well-calibrated horizon's
quantiles widened like a random walk, by the square root of the horizon ratio.
Nothing a forecast is scored on is used to fit, choose or calibrate it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from statsforecast.models import AutoETS, DynamicOptimizedTheta, SeasonalNaive

from meterline.insight.forecast import BacktestResult, Prediction, bucketed

Array = npt.NDArray[np.float64]
Model = Callable[[Array, int], Array]
WEEK = 7
CHOICE_DAYS = 28
CALIBRATION_DAYS = 56
MIN_RESIDUALS = 20
MIN_TRAIN = 2 * WEEK
MIN_WARMUP = 14
WARMUP = 28
MIN_DAYS = MIN_TRAIN + MIN_WARMUP
"""The shortest history a daily forecast accepts (train two weeks, calibrate two)."""


def _snaive(train: Array, h: int) -> Array:
    out = SeasonalNaive(season_length=WEEK).forecast(y=train, h=h)["mean"]
    return np.asarray(out, dtype=np.float64)


def _snaive_level(train: Array, h: int) -> Array:
    base = _snaive(train, h)
    recent = float(np.sum(train[-3:]))
    before = float(np.sum(train[-WEEK - 3 : -WEEK]))
    ratio = recent / before if before > 0 else 1.0
    ratio = min(max(ratio, 0.1), 10.0)
    fade = np.exp(-np.arange(1, h + 1) / float(WEEK))
    return np.asarray(base * (1.0 + (ratio - 1.0) * fade), dtype=np.float64)


FIT_DAYS = 26 * WEEK


def _fitted(make: Callable[[], Any]) -> Model:
    """A statsforecast model that stands in for the seasonal naive forecast where it
    cannot be fitted: a constant stretch, or too few days for its parameters (the
    library raises a bare ``Exception`` then)."""

    def forecast(train: Array, h: int) -> Array:
        if len(train) < 4 * WEEK or np.ptp(train[-3 * WEEK :]) == 0:
            return _snaive(train, h)
        try:
            out = make().forecast(y=train[-FIT_DAYS:], h=h)["mean"]
        except Exception:
            return _snaive(train, h)
        values = np.asarray(out, dtype=np.float64)
        return values if np.all(np.isfinite(values)) else _snaive(train, h)

    return forecast


_ets = _fitted(lambda: AutoETS(season_length=WEEK, model="AAA", damped=True))
_theta = _fitted(lambda: DynamicOptimizedTheta(season_length=WEEK))


MODELS: dict[str, Model] = {
    "snaive7": _snaive,
    "snaive7_level": _snaive_level,
    "ets": _ets,
    "theta": _theta,
}
DEFAULT_MODEL = "snaive7"


def daily(epochs: Sequence[float], values: Sequence[float]) -> tuple[list[datetime], Array]:
    """Sum values into UTC days; missing days repeat the previous day's value."""
    return bucketed(epochs, values, 86400)


@dataclass(slots=True)
class _Made:
    """The forecasts every candidate made at one origin, and which one was chosen."""

    origin: int
    forecasts: dict[str, Array]
    chosen: str


def _offset(train: Array) -> float:
    """The additive offset of the log-ratio: 1 % of the mean level (at least a tiny
    positive number), so a day with zero and a forecast near zero compare sensibly
    whatever the unit (requests, dollars)."""
    return max(0.01 * float(np.mean(np.abs(train))), 1e-6)


def _conformal(errs: Sequence[float]) -> tuple[float, float, float, float]:
    """(q10, q90, q2.5, q97.5) of ``errs`` with the split-conformal finite-sample rule:
    the upper bound is the ``ceil((n + 1) p)``-th smallest error, the lower bound the
    ``floor((n + 1) p)``-th, so a new error falls inside at least as often as promised
    (plain empirical quantiles of a few dozen errors cover too little)."""
    ordered = sorted(errs)
    n = len(ordered)

    def upper(p: float) -> float:
        return ordered[min(math.ceil((n + 1) * p), n) - 1]

    def lower(p: float) -> float:
        return ordered[max(math.floor((n + 1) * p), 1) - 1]

    return lower(0.1), upper(0.9), lower(0.025), upper(0.975)


def _quantiles(
    residuals: dict[int, list[float]], horizon: int
) -> list[tuple[float, float, float, float]]:
    """Log-ratio bounds (q10, q90, q2.5, q97.5) for horizons 1..``horizon``."""
    calibrated = {
        k: _conformal(errs) for k, errs in residuals.items() if len(errs) >= MIN_RESIDUALS
    }
    if not calibrated:
        pooled = [e / math.sqrt(k) for k, errs in residuals.items() for e in errs]
        if len(pooled) < MIN_RESIDUALS:
            raise ValueError(f"need at least {MIN_DAYS} days of history to calibrate intervals")
        calibrated = {1: _conformal(pooled)}
    widest = max(calibrated)
    out: list[tuple[float, float, float, float]] = []
    for k in range(1, horizon + 1):
        if k in calibrated:
            q = calibrated[k]
        else:
            scale = math.sqrt(k / widest) if k > widest else 1.0
            ref = calibrated[widest] if k > widest else calibrated[min(calibrated)]
            q = (ref[0] * scale, ref[1] * scale, ref[2] * scale, ref[3] * scale)
        out.append(q)
    return out


def _roll(
    y: Array, horizon: int, start: int, stop: int, first_scored: int
) -> tuple[list[Prediction], dict[str, int]]:
    """Forecast from every origin in ``[start, stop]`` (``stop`` may equal ``len(y)``:
    the forecast ahead). Returns the forecasts of origins ``>= first_scored`` and how
    often each model was chosen there."""
    n = len(y)
    history: list[_Made] = []
    predictions: list[Prediction] = []
    counts: dict[str, int] = {}
    for origin in range(start, stop + 1):
        train = y[:origin]
        known = n - origin  # targets after the origin that exist in the series
        h = horizon if origin == n else min(horizon, known)
        fit_h = horizon if origin == n else max(1, min(max(horizon, CHOICE_DAYS), known))
        forecasts = {name: model(train, fit_h) for name, model in MODELS.items()}
        # model choice: errors of past forecasts whose targets are now observed
        errors = dict.fromkeys(MODELS, 0.0)
        residuals: dict[int, list[float]] = {}
        seen = False
        c = _offset(train)
        for made in history:
            if made.origin < origin - CALIBRATION_DAYS:
                continue
            upto = min(origin - made.origin, len(next(iter(made.forecasts.values()))))
            if upto <= 0:
                continue
            actual = y[made.origin : made.origin + upto]
            if made.origin >= origin - CHOICE_DAYS:
                for name, fc in made.forecasts.items():
                    errors[name] += float(np.sum(np.abs(actual - fc[:upto])))
                    seen = True
            chosen_fc = made.forecasts[made.chosen]
            for k in range(upto):
                residuals.setdefault(k + 1, []).append(
                    math.log((max(actual[k], 0.0) + c) / (max(chosen_fc[k], 0.0) + c))
                )
        name = min(errors, key=lambda m: errors[m]) if seen else DEFAULT_MODEL
        history.append(_Made(origin, forecasts, name))
        if origin < first_scored:
            continue
        counts[name] = counts.get(name, 0) + 1
        yhat = forecasts[name][:h]
        for k, (point, q) in enumerate(zip(yhat, _quantiles(residuals, h), strict=True)):
            base = max(float(point), 0.0) + c
            lo80, hi80, lo95, hi95 = (base * math.exp(v) - c for v in q)
            predictions.append(
                Prediction(origin, origin + k, k + 1, name, float(point), lo80, hi80, lo95, hi95)
            )
    return predictions, counts


def backtest(y: Array, horizon: int = 14, test_days: int = 56) -> BacktestResult:
    """Rolling-origin backtest: one origin per day over the last ``test_days``.

    Each origin forecasts days 1..``horizon`` from the days before it; the four weeks
    before the test period warm up model choice and calibration and are not scored.
    MASE is scaled by the in-sample error of the weekly seasonal naive forecast before
    the test period. Raises ``ValueError`` on too short a series.
    """
    n = len(y)
    test0 = n - test_days
    if test0 - WARMUP < MIN_TRAIN:
        raise ValueError(f"need at least {MIN_TRAIN + WARMUP + test_days} days, the series has {n}")
    predictions, counts = _roll(y, horizon, test0 - WARMUP, n - 1, test0)
    actual = np.asarray([y[p.target] for p in predictions])
    point = np.asarray([p.yhat for p in predictions])
    scale = float(np.mean(np.abs(y[WEEK:test0] - y[: test0 - WEEK])))
    abs_err = np.abs(actual - point)
    return BacktestResult(
        predictions,
        float(np.mean(abs_err)) / scale if scale > 0 else (0.0 if not abs_err.any() else math.inf),
        1.0 - float(np.sum(abs_err) / max(float(np.sum(np.abs(actual))), 1e-12)),
        float(np.mean([p.lo80 <= y[p.target] <= p.hi80 for p in predictions])),
        float(np.mean([p.lo95 <= y[p.target] <= p.hi95 for p in predictions])),
        test_days,
        counts,
    )


def forecast_ahead(y: Array, horizon: int = 30) -> list[Prediction]:
    """Forecast the ``horizon`` days after the series, chosen and calibrated like the
    backtest on up to its last four weeks. Raises ``ValueError`` on too short a series."""
    n = len(y)
    if n < MIN_DAYS:
        raise ValueError(f"need at least {MIN_DAYS} days, the series has {n}")
    warmup = min(WARMUP, n - MIN_TRAIN)
    predictions, _ = _roll(y, horizon, n - warmup, n, n)
    return predictions
