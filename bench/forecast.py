"""Time the rolling-origin forecast backtest on a 5,000-hour series.

Prints the wall time of the full backtest (model choice among all candidates at every
hourly origin) and its ratio to a baseline measured in the same run: the same loop with
the weekly seasonal naive model alone.
"""

from __future__ import annotations

import math
import random
import time

import numpy as np

from meterline.insight import forecast


def series(hours: int = 5000) -> np.ndarray:
    rng = random.Random(1)
    return np.asarray(
        [
            1000 * (1 + 0.5 * math.sin(2 * math.pi * t / 24)) * (0.8 if (t // 24) % 7 >= 5 else 1)
            + rng.gauss(0, 30)
            for t in range(hours)
        ]
    )


def main() -> None:
    y = series()
    started = time.perf_counter()
    full = forecast.backtest(y, horizon=24)
    full_s = time.perf_counter() - started
    saved = dict(forecast.MODELS)
    forecast.MODELS.clear()
    forecast.MODELS["snaive168"] = saved["snaive168"]
    try:
        started = time.perf_counter()
        forecast.backtest(y, horizon=24)
        base_s = time.perf_counter() - started
    finally:
        forecast.MODELS.clear()
        forecast.MODELS.update(saved)
    print(f"series: {len(y)} hours, 336 origins, horizons 1..24")
    print(f"backtest with model choice: {full_s:.2f} s (MASE {full.mase:.3f})")
    print(f"baseline, seasonal naive only: {base_s:.2f} s")
    print(f"ratio: {full_s / base_s:.2f}x")


if __name__ == "__main__":
    main()
