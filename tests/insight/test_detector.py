"""The streaming detector on series whose anomalies are known by construction."""

from __future__ import annotations

import math
import random

from meterline.insight.detector import NoveltyDetector, score_series


def daily(n: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [10 + 5 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 0.3) for i in range(n)]


def test_scores_stay_in_unit_interval_and_spike_is_the_top_score() -> None:
    values = daily(3000)
    values[2500] += 40
    scores = score_series(values)
    assert all(0.0 <= s <= 1.0 for s in scores)
    top = max(range(len(scores)), key=scores.__getitem__)
    assert 2500 <= top <= 2510
    assert max(scores[:2400]) < scores[top]


def test_level_shift_is_reported_once_early() -> None:
    values = daily(3000)
    for i in range(2000, 3000):
        values[i] += 30
    scores = score_series(values)
    top = max(range(len(scores)), key=scores.__getitem__)
    # the long-scale features see the new level within a few dozen points
    assert 2000 <= top <= 2080
    assert max(scores[2300:]) < scores[top]


def test_regular_series_without_anomaly_scores_low() -> None:
    assert max(score_series([5.0] * 2000)) == 0.0
    scores = score_series(daily(3000))
    assert max(scores[1000:]) < 0.9


def test_non_finite_values_are_skipped() -> None:
    detector = NoveltyDetector()
    assert detector.update(math.nan) == 0.0
    assert detector.update(math.inf) == 0.0
    assert 0.0 <= detector.update(1.0) <= 1.0
