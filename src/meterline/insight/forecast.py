"""Hourly forecasts with calibrated intervals, and their rolling-origin backtest.

Candidate models, all fast enough to refit at every hourly origin:

* ``snaive168`` / ``snaive24``: seasonal naive (weekly, daily) from ``statsforecast``;
* ``snaive168_level``: the weekly seasonal naive scaled by how the last six hours
  compare with the same hours a week earlier, the correction fading with the horizon
  (time constant 12 h) — it follows a sudden level change such as a storm or an outage
  without forgetting the weekly shape.

At each origin the model is chosen automatically, per series, as the candidate with the
lowest absolute error over the previous week of forecasts whose targets were already
observed at that origin. Prediction intervals are conformal: quantiles, per horizon, of
the log-ratio between actual and forecast over the previous two weeks of such forecasts.
Nothing a forecast is scored on is ever used to fit or choose or calibrate it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from statsforecast.models import SeasonalNaive

Array = npt.NDArray[np.float64]
Model = Callable[[Array, int], Array]
WEEK = 168
DAY = 24


def _snaive(season: int) -> Model:
    def forecast(train: Array, h: int) -> Array:
        out = SeasonalNaive(season_length=season).forecast(y=train, h=h)["mean"]
        return np.asarray(out, dtype=np.float64)

    return forecast


def _snaive_level(train: Array, h: int) -> Array:
    base = _snaive(WEEK)(train, h)
    recent = float(np.sum(train[-6:]))
    before = float(np.sum(train[-WEEK - 6 : -WEEK]))
    ratio = recent / before if before > 0 else 1.0
    ratio = min(max(ratio, 0.1), 10.0)
    fade = np.exp(-np.arange(1, h + 1) / 12.0)
    return base * (1.0 + (ratio - 1.0) * fade)


MODELS: dict[str, Model] = {
    "snaive168": _snaive(WEEK),
    "snaive24": _snaive(DAY),
    "snaive168_level": _snaive_level,
}
DEFAULT_MODEL = "snaive168_level"


def bucketed(
    epochs: Sequence[float], values: Sequence[float], seconds: int
) -> tuple[list[datetime], Array]:
    """Sum values into UTC buckets of ``seconds``; a missing bucket repeats the previous."""
    sums: dict[int, float] = {}
    for t, v in zip(epochs, values, strict=True):
        bucket = int(t // seconds)
        sums[bucket] = sums.get(bucket, 0.0) + v
    if not sums:
        return [], np.zeros(0)
    first, last = min(sums), max(sums)
    out = np.zeros(last - first + 1)
    prev = 0.0
    for i in range(last - first + 1):
        prev = sums.get(first + i, prev)
        out[i] = prev
    stamps = [datetime.fromtimestamp((first + i) * seconds, tz=UTC) for i in range(len(out))]
    return stamps, out


def hourly(epochs: Sequence[float], values: Sequence[float]) -> tuple[list[datetime], Array]:
    """Sum values into UTC hours; missing hours repeat the previous hour's value."""
    return bucketed(epochs, values, 3600)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One scored forecast. ``origin`` is the index of the first unseen hour (the model
    saw hours ``< origin``); ``target = origin + horizon - 1``."""

    origin: int
    target: int
    horizon: int
    model: str
    yhat: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Accuracy of a rolling-origin backtest over the scored origins."""

    predictions: list[Prediction]
    mase: float
    accuracy: float
    coverage80: float
    coverage95: float
    origins: int
    models_chosen: dict[str, int]


def _bounds(yhat: Array, residuals: list[list[float]]) -> list[tuple[float, float, float, float]]:
    out: list[tuple[float, float, float, float]] = []
    for k, point in enumerate(yhat):
        errs = residuals[k]
        if len(errs) < 20:
            spread = 0.25 * abs(point)
            out.append((point - spread, point + spread, point - 2 * spread, point + 2 * spread))
            continue
        q = np.quantile(np.asarray(errs), [0.1, 0.9, 0.025, 0.975])
        base = max(point, 0.0) + 1.0
        lo80, hi80, lo95, hi95 = (base * math.exp(float(v)) - 1.0 for v in q)
        out.append((lo80, hi80, lo95, hi95))
    return out


def backtest(y: Array, horizon: int = 24, test_hours: int = 14 * 24) -> BacktestResult:
    """Rolling-origin backtest: one origin per hour over the last ``test_hours``.

    Each origin forecasts horizons 1..``horizon`` from the data before it. The two weeks
    before the test period warm up model choice and interval calibration and are not
    scored. MASE is scaled by the in-sample error of the weekly seasonal naive forecast
    on the data before the test period. Raises ``ValueError`` on too short a series.
    """
    n = len(y)
    warmup = 14 * 24
    test0 = n - test_hours
    if test0 - warmup < 2 * WEEK + 6:
        raise ValueError(
            f"need at least {2 * WEEK + 6 + warmup + test_hours} hours, the series has {n}"
        )
    predictions, counts = _roll(y, horizon, test0, warmup, ahead=False)
    actual = np.asarray([y[p.target] for p in predictions])
    point = np.asarray([p.yhat for p in predictions])
    scale = float(np.mean(np.abs(y[WEEK:test0] - y[: test0 - WEEK])))
    abs_err = np.abs(actual - point)
    inside80 = [p.lo80 <= y[p.target] <= p.hi80 for p in predictions]
    inside95 = [p.lo95 <= y[p.target] <= p.hi95 for p in predictions]
    return BacktestResult(
        predictions,
        float(np.mean(abs_err)) / scale if scale > 0 else (0.0 if not abs_err.any() else math.inf),
        1.0 - float(np.sum(abs_err) / max(float(np.sum(np.abs(actual))), 1e-12)),
        float(np.mean(inside80)),
        float(np.mean(inside95)),
        test_hours,
        counts,
    )


def _roll(
    y: Array, horizon: int, test0: int, warmup: int, ahead: bool
) -> tuple[list[Prediction], dict[str, int]]:
    """Forecast from every origin in ``[test0 - warmup, n)`` (and ``n`` when ``ahead``);
    return the forecasts of origins ``>= test0`` and how often each model was chosen."""
    n = len(y)
    start = test0 - warmup
    # forecasts by origin: model -> array of horizon values
    made: dict[int, dict[str, Array]] = {}
    cum_err: dict[int, dict[str, Array]] = {}
    chosen_at: dict[int, str] = {}
    residuals: list[list[float]] = [[] for _ in range(horizon)]
    pending: list[Prediction] = []
    predictions: list[Prediction] = []
    counts: dict[str, int] = {}
    for origin in range(start, n + 1 if ahead else n):
        # targets observed before this origin become evidence for choice and calibration
        still = []
        for p in pending:
            if p.target < origin:
                residuals[p.horizon - 1].append(
                    math.log((max(y[p.target], 0.0) + 1.0) / (max(p.yhat, 0.0) + 1.0))
                )
                if len(residuals[p.horizon - 1]) > 2 * warmup:
                    del residuals[p.horizon - 1][0]
            else:
                still.append(p)
        pending = still
        h = horizon if origin == n else min(horizon, n - origin)
        train = y[:origin]
        made[origin] = {name: model(train, h) for name, model in MODELS.items()}
        # running absolute errors of each forecast; only the first ``origin - past``
        # (already observed) entries are ever read, so nothing unseen is used
        observed = min(h, n - origin)
        cum_err[origin] = {
            name: np.cumsum(np.abs(y[origin : origin + observed] - fc[:observed]))
            for name, fc in made[origin].items()
        }
        errors = dict.fromkeys(MODELS, 0.0)
        seen = False
        for past in range(max(start, origin - WEEK), origin):
            for name, cum in cum_err[past].items():
                known = min(len(cum), origin - past)
                if known > 0:
                    errors[name] += float(cum[known - 1])
                    seen = True
        fallback = DEFAULT_MODEL if DEFAULT_MODEL in MODELS else next(iter(MODELS))
        name = min(errors, key=lambda k: errors[k]) if seen else fallback
        chosen_at[origin] = name
        yhat = made[origin][name]
        # warm-up forecasts only feed choice and calibration (by their point): no bounds
        bounds_of = _bounds(yhat, residuals) if origin >= test0 else [(math.nan,) * 4] * len(yhat)
        for k, (point, bounds) in enumerate(zip(yhat, bounds_of, strict=True)):
            pred = Prediction(origin, origin + k, k + 1, name, float(point), *bounds)
            pending.append(pred)
            if origin >= test0:
                predictions.append(pred)
        if origin >= test0:
            counts[name] = counts.get(name, 0) + 1
        made.pop(origin - WEEK - 1, None)
        cum_err.pop(origin - WEEK - 1, None)
    return predictions, counts


def forecast_ahead(y: Array, horizon: int = 24) -> list[Prediction]:
    """Forecast the ``horizon`` hours after the series, chosen and calibrated like the
    backtest on its last two weeks. Raises ``ValueError`` on too short a series."""
    warmup = 14 * 24
    if len(y) - warmup < 2 * WEEK + 6:
        raise ValueError(f"need at least {2 * WEEK + 6 + warmup} hours, the series has {len(y)}")
    predictions, _ = _roll(y, horizon, len(y), warmup, ahead=True)
    return predictions
