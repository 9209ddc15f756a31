"""Time the forecasts behind the planning routes.

Prints the wall time of one hourly forecast (35 days of history, 24 hours ahead) and of
one daily forecast (a year of history, a year ahead — the cost projections' forecast),
each with its model choice and interval calibration, and the ratio of each to a baseline
measured in the same run: the same forecast with the seasonal naive model alone.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from meterline.insight import daily, forecast


def hourly_series(hours: int = 35 * 24) -> np.ndarray:
    rng = random.Random(1)
    return np.asarray(
        [
            100 * (1 + 0.5 * math.sin(2 * math.pi * t / 24)) * (0.8 if (t // 24) % 7 >= 5 else 1)
            + rng.gauss(0, 5)
            for t in range(hours)
        ]
    )


def daily_series(days: int = 365) -> np.ndarray:
    rng = random.Random(2)
    return np.asarray([1000 + 2 * d - 300 * (d % 7 >= 5) + rng.gauss(0, 40) for d in range(days)])


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def alone(module: Any, name: str, run: Callable[[], Any]) -> float:
    saved = dict(module.MODELS)
    module.MODELS.clear()
    module.MODELS[name] = saved[name]
    try:
        return timed(run)
    finally:
        module.MODELS.clear()
        module.MODELS.update(saved)


def main() -> None:
    hy, dy = hourly_series(), daily_series()
    daily.forecast_ahead(dy[:60], 7)  # compile the statsforecast kernels first
    h_full = timed(lambda: forecast.forecast_ahead(hy, 24))
    h_base = alone(forecast, "snaive168", lambda: forecast.forecast_ahead(hy, 24))
    d_full = timed(lambda: daily.forecast_ahead(dy, 365))
    d_base = alone(daily, "snaive7", lambda: daily.forecast_ahead(dy, 365))
    print(f"hourly: {len(hy)} hours of history, 24 ahead: {h_full:.2f} s")
    print(f"  baseline, weekly seasonal naive only: {h_base:.2f} s, ratio {h_full / h_base:.2f}x")
    print(f"daily: {len(dy)} days of history, 365 ahead: {d_full:.2f} s")
    print(f"  baseline, weekly seasonal naive only: {d_base:.2f} s, ratio {d_full / d_base:.2f}x")


if __name__ == "__main__":
    main()
