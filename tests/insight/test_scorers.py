"""Each surprise scorer on series whose departures are known by construction."""

from __future__ import annotations

import math
import random

from meterline.insight.detector import NoveltyDetector, record_score, score_series
from meterline.insight.scorers import (
    DAY,
    LevelShift,
    PatternNovelty,
    RecordScale,
    RobustSpread,
    SeasonalResidual,
)

STEP = 300.0  # five-minute points: 288 a day


def daily(n: int, seed: int = 11) -> list[float]:
    rng = random.Random(seed)
    return [50 + 30 * (1 if (i % 288) >= 144 else 0) + rng.gauss(0, 1.0) for i in range(n)]


def test_robust_spread_ignores_outliers() -> None:
    spread = RobustSpread(500, every=1)
    rng = random.Random(1)
    for _ in range(500):
        spread.add(rng.gauss(10, 2))
    for _ in range(20):
        spread.add(1e6)
    assert abs(spread.median - 10) < 0.5
    assert 1.5 < spread.spread < 2.6


def test_record_scale_is_relative_to_the_recent_maximum() -> None:
    scale = RecordScale(reference=100, learning=10)
    assert [scale.update(1.0) for _ in range(10)] == [0.0] * 10
    assert scale.update(0.5) == 0.5 / (1.0 + 1e-9)
    assert scale.update(3.0) > 2.9
    # the record of 3 ages out after `reference` points
    for _ in range(100):
        scale.update(1.0)
    assert abs(scale.update(2.0) - 2.0) < 1e-6


def test_pattern_novelty_peaks_on_a_shape_never_seen() -> None:
    values = daily(2000)
    values[1500] += 25
    scorer = PatternNovelty()
    novelty = [scorer.update(v) for v in values]
    # the first afternoon step is novel too; once seen, only the spike stands out
    top = max(range(600, len(novelty)), key=novelty.__getitem__)
    assert top in range(1500, 1504)
    assert max(novelty[600:1400]) < novelty[top] / 3


def test_seasonal_residual_sees_a_missing_daily_step() -> None:
    values = daily(288 * 6)
    # on day 5 the afternoon step does not happen
    for i in range(288 * 4 + 144, 288 * 5):
        values[i] -= 30
    scorer = SeasonalResidual()
    surprise = [scorer.update(v, i * STEP) for i, v in enumerate(values)]
    assert surprise[:288] == [0.0] * 288  # no peer a day back yet
    start = 288 * 4 + 144
    assert max(surprise[start : start + 12]) > 10
    assert max(surprise[300 : start - 1]) < 6


def test_seasonal_residual_prefers_last_week_for_a_weekly_pattern() -> None:
    # hourly points; weekends (days 5 and 6 of each week) run at half the level
    rng = random.Random(4)
    values = [(50 if (i // 24) % 7 < 5 else 25) + rng.gauss(0, 1.0) for i in range(24 * 7 * 5)]
    scorer = SeasonalResidual()
    surprise = [scorer.update(v, i * 3600.0) for i, v in enumerate(values)]
    third_weekend = 24 * (14 + 5)
    assert max(surprise[third_weekend : third_weekend + 48]) < 6


def test_seasonal_residual_tolerates_gaps_and_a_step_back() -> None:
    scorer = SeasonalResidual()
    stamps = [i * STEP for i in range(600) if not 400 <= i < 450]
    for t in stamps:
        assert scorer.update(10.0, t) >= 0.0
    assert scorer.update(10.0, stamps[-1] - 2 * STEP) >= 0.0
    assert math.isfinite(scorer.update(10.0, stamps[-1] + DAY))


def test_level_shift_flags_a_drop_as_it_starts() -> None:
    rng = random.Random(2)
    values = [100 + rng.gauss(0, 1.0) for _ in range(1000)] + [
        90 + rng.gauss(0, 1.0) for _ in range(100)
    ]
    scorer = LevelShift()
    surprise = [scorer.update(v) for v in values]
    assert max(surprise[300:1000]) < 6
    assert max(surprise[1000:1010]) > 8


def test_record_score_is_monotone_and_bounded() -> None:
    grid = [x / 10 for x in range(0, 100)]
    mapped = [record_score(x) for x in grid]
    assert mapped == sorted(mapped)
    assert record_score(1.0) == 0.5
    assert all(0.0 <= m < 1.0 for m in mapped)


def test_timestamps_let_the_detector_see_a_missing_daily_step() -> None:
    values = daily(288 * 8)
    day = 288 * 6
    for i in range(day + 144, day + 288):
        values[i] -= 30
    stamps = [i * STEP for i in range(len(values))]
    with_time = score_series(values, timestamps=stamps)
    top = max(range(len(with_time)), key=with_time.__getitem__)
    assert day + 144 <= top < day + 200
    assert max(with_time[600 : day + 140]) < with_time[top]


def test_detector_accepts_values_with_or_without_timestamps() -> None:
    detector = NoveltyDetector()
    assert 0.0 <= detector.update(1.0) <= 1.0
    assert 0.0 <= detector.update(2.0, 1_000_000.0) <= 1.0


def test_record_scale_can_judge_without_remembering() -> None:
    scale = RecordScale(reference=100, learning=5)
    for _ in range(10):
        scale.update(1.0)
    assert scale.judge(10.0) > 9.9
    # judged but not remembered: 10 did not become the record
    assert scale.update(5.0) > 4.9


def test_one_anomaly_does_not_hide_the_next() -> None:
    rng = random.Random(5)
    values = [20 + 4 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 0.3) for i in range(3000)]
    values[1200] += 60  # a large spike first ...
    values[1800] += 25  # ... then a smaller one, still far outside the noise
    scores = score_series(values)
    assert max(scores[1200:1205]) > 0.5
    assert max(scores[1800:1805]) > 0.5
    assert max(scores[1300:1795]) < 0.5
