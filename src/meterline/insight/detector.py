"""A streaming univariate anomaly detector: an ensemble of complementary surprise scorers.

Each new point is judged by three scorers that use only the past:

* pattern novelty: the distance from the recent shape of the series to the nearest
  shape seen before (spikes, flat stretches, a changed rhythm);
* seasonal residual: how far the recent values sit from the same time one and two days
  before, and one week before (a missing daily peak, a quiet weekday) — only when
  timestamps are given;
* level shift: the recent mean against the trailing median, in robust spreads (drops
  and climbs as they start).

Each surprise is judged against the largest of its own recent surprises (a record
above 1 is unusual for *this* series, so one threshold serves noisy and smooth series
alike); the secondary scorers are weighted down so that they alarm only on a clear
record. After a detection, further detections are damped for a while (one event is
reported once, early), and the surprises of the detection and of that while are not
remembered as part of the record, so one anomaly does not hide the next.

The same configuration serves every series; nothing depends on its length or name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from meterline.insight.scorers import LevelShift, PatternNovelty, RecordScale, SeasonalResidual


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Tuning of :class:`NoveltyDetector` (one configuration for every series).

    ``learning`` points are consumed before anything is scored; ``reference`` is how
    many past surprises a new one is compared with; ``suppress`` how many points a
    detection damps the ones after it; ``alarm`` the score that counts as a detection
    for that damping. ``seasonal_weight`` and ``level_weight`` scale the secondary
    scorers (0 turns one off).
    """

    short: int = 4
    long_points: int = 6
    long_stride: int = 4
    history: int = 8000
    learning: int = 300
    reference: int = 2000
    suppress: int = 400
    alarm: float = 0.5
    seasonal_weight: float = 0.5
    seasonal_smooth: int = 6
    level_weight: float = 0.7
    level_recent: int = 12
    level_baseline: int = 500


def record_score(excess: float) -> float:
    """Map a surprise relative to the recent record to [0, 1): 0.5 at the record.

    Below the record the score grows quadratically (ordinary points stay low); above
    it, ``0.5 + 0.5 * (1 - 1 / excess)``: graded by how far the record is broken.
    """
    if excess < 1.0:
        return 0.5 * max(excess, 0.0) ** 2
    return 0.5 + 0.5 * (1.0 - 1.0 / excess)


class NoveltyDetector:
    """Scores one value at a time; ``update`` returns an anomaly score in [0, 1]."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        c = self.config
        self._novelty = PatternNovelty(c.short, c.long_points, c.long_stride, c.history)
        self._seasonal = SeasonalResidual(smooth=c.seasonal_smooth)
        self._level = LevelShift(c.level_recent, c.level_baseline)
        self._scales = [RecordScale(c.reference, c.learning) for _ in range(3)]
        self._since_alarm = 10**9

    def update(self, value: float, timestamp: float | None = None) -> float:
        """Consume the next value and return its anomaly score in [0, 1].

        ``timestamp`` (seconds since the epoch) enables the daily and weekly seasonal
        scorer; values must then come in time order (a value that steps back in time is
        scored but not used as a seasonal peer). A non-finite value scores 0 and is
        skipped.
        """
        c = self.config
        if not math.isfinite(value):
            return 0.0
        surprises = [self._novelty.update(value), 0.0, 0.0]
        weights = [1.0, 0.0, c.level_weight]
        if c.seasonal_weight > 0 and timestamp is not None:
            surprises[1] = self._seasonal.update(value, timestamp)
            weights[1] = c.seasonal_weight
        if c.level_weight > 0:
            surprises[2] = self._level.update(value)
        excess = 0.0
        for scale, surprise, weight in zip(self._scales, surprises, weights, strict=True):
            if weight > 0:
                excess = max(excess, weight * scale.judge(surprise))
        score = record_score(excess)
        self._since_alarm += 1
        if self._since_alarm < c.suppress:
            score *= self._since_alarm / c.suppress * 0.5
        if score >= c.alarm:
            self._since_alarm = 0
        # the surprises of a reported anomaly are judged, not remembered
        if self._since_alarm >= c.suppress:
            for scale, surprise, weight in zip(self._scales, surprises, weights, strict=True):
                if weight > 0:
                    scale.remember(surprise)
        return max(0.0, min(1.0, score))


def score_series(
    values: Sequence[float],
    config: DetectorConfig | None = None,
    timestamps: Sequence[float] | None = None,
) -> list[float]:
    """Run a fresh detector over a whole series and return one score per value.

    ``timestamps`` (seconds, one per value) enable the seasonal scorer.
    """
    detector = NoveltyDetector(config)
    if timestamps is None:
        return [detector.update(v) for v in values]
    if len(timestamps) != len(values):
        raise ValueError("values and timestamps differ in length")
    return [detector.update(v, t) for v, t in zip(values, timestamps, strict=True)]
