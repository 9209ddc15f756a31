"""A streaming univariate anomaly detector: pattern novelty with a learned baseline.

Each new point is turned into a feature vector (the recent values at two time scales,
relative to the running range of the series). Its novelty is the distance to the
nearest feature vector seen before (excluding the immediately preceding overlap).
Novelty is judged against the distribution of past novelties, so a noisy series
needs a larger departure than a smooth one. After a detection, further detections
are damped for a while: one event is reported once, early.

The same configuration serves every series; nothing depends on its length or name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Tuning of :class:`NoveltyDetector` (one configuration for every series)."""

    short: int = 4
    long_points: int = 6
    long_stride: int = 4
    learning: int = 300
    history: int = 12000
    suppress: int = 300
    reference: int = 2000
    alarm: float = 0.5


class NoveltyDetector:
    """Scores one value at a time; ``update`` returns an anomaly score in [0, 1]."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        c = self.config
        self._span = max(c.short, c.long_points * c.long_stride)
        self._raw: list[float] = []
        self._dim = c.short + c.long_points
        self._features = np.zeros((c.history, self._dim), dtype=np.float64)
        self._norms = np.zeros(c.history, dtype=np.float64)
        self._count = 0
        self._lo = math.inf
        self._hi = -math.inf
        self._novelty: list[float] = []
        self._since_alarm = 10**9
        self._n = 0

    def _feature(self) -> Array:
        c = self.config
        raw = np.asarray(self._raw[-self._span :], dtype=np.float64)
        short = raw[-c.short :]
        long = raw[-c.long_points * c.long_stride :].reshape(c.long_points, c.long_stride)
        return np.concatenate([short, long.mean(axis=1)])

    def update(self, value: float) -> float:
        """Consume the next value and return its anomaly score in [0, 1]."""
        c = self.config
        self._n += 1
        if not math.isfinite(value):
            return 0.0
        self._raw.append(value)
        if len(self._raw) > self._span * 2:
            del self._raw[: -self._span]
        # the range before this value: a spike must not shrink its own novelty
        scale = max(self._hi - self._lo, 1e-9) if self._hi >= self._lo else 1e-9
        self._lo = min(self._lo, value)
        self._hi = max(self._hi, value)
        if len(self._raw) < self._span:
            return 0.0
        feature = self._feature()
        stored = min(self._count, c.history)
        usable = stored - self._span
        novelty = 0.0
        if usable > 0:
            ring = self._features[:stored]
            # exclude the most recent `span` vectors: they overlap the current one
            newest = (self._count - 1) % c.history
            age = (newest - np.arange(stored)) % stored  # 0 = newest
            sq = self._norms[:stored] - 2.0 * (ring @ feature) + float(feature @ feature)
            sq[age < self._span] = np.inf
            dist = math.sqrt(max(float(np.min(sq)), 0.0) / self._dim)
            novelty = dist / scale
        self._norms[self._count % c.history] = float(feature @ feature)
        self._features[self._count % c.history] = feature
        self._count += 1
        score = 0.0
        if self._n > c.learning and self._novelty:
            reference = np.asarray(self._novelty[-c.reference :])
            level = float(np.mean(reference <= novelty))
            excess = novelty / (float(np.max(reference)) + 1e-9)
            # below the record: ranked and damped; above it: graded by how far above
            score = 0.5 * level * excess
            if excess >= 1.0:
                score = 0.5 + 0.5 * (1.0 - 1.0 / excess)
        if self._n > c.learning // 2:
            self._novelty.append(novelty)
        if len(self._novelty) > c.reference * 2:
            del self._novelty[: -c.reference]
        self._since_alarm += 1
        if self._since_alarm < c.suppress:
            score *= self._since_alarm / c.suppress * 0.5
        if score >= c.alarm:
            self._since_alarm = 0
        return max(0.0, min(1.0, score))


def score_series(
    values: list[float] | tuple[float, ...], config: DetectorConfig | None = None
) -> list[float]:
    """Run a fresh detector over a whole series and return one score per value."""
    detector = NoveltyDetector(config)
    return [detector.update(v) for v in values]
