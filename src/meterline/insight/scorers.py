"""Streaming surprise scorers: each consumes one point at a time and uses only the past.

Every scorer returns a raw, non-negative surprise for the point it has just consumed
(0 while it is still learning). The raw figures are not comparable between scorers or
series; :class:`RecordScale` turns them into a comparable "how far beyond anything seen
lately" figure, and the ensemble detector combines those.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

DAY = 86400.0
WEEK = 7 * DAY


class PatternNovelty:
    """Distance from the recent shape of the series to the nearest shape seen before.

    The shape is the last ``short`` values plus ``long_points`` means of ``long_stride``
    values each; the distance (root mean square, in the series' own units) is taken to
    every stored shape except those overlapping the current one. It is not divided by
    the range of the series: one large event would otherwise make every later one look
    small.
    """

    def __init__(
        self,
        short: int = 4,
        long_points: int = 6,
        long_stride: int = 4,
        history: int = 8000,
    ) -> None:
        self._short = short
        self._long_points = long_points
        self._long_stride = long_stride
        self._history = history
        self._span = max(short, long_points * long_stride)
        self._dim = short + long_points
        self._raw: list[float] = []
        self._features = np.zeros((history, self._dim), dtype=np.float64)
        self._norms = np.zeros(history, dtype=np.float64)
        self._count = 0

    def _feature(self) -> Array:
        raw = np.asarray(self._raw[-self._span :], dtype=np.float64)
        short = raw[-self._short :]
        long = raw[-self._long_points * self._long_stride :].reshape(
            self._long_points, self._long_stride
        )
        return np.concatenate([short, long.mean(axis=1)])

    def update(self, value: float) -> float:
        """Consume ``value``; return the novelty of the shape it completes."""
        self._raw.append(value)
        if len(self._raw) > self._span * 2:
            del self._raw[: -self._span]
        if len(self._raw) < self._span:
            return 0.0
        feature = self._feature()
        stored = min(self._count, self._history)
        novelty = 0.0
        if stored > self._span:
            ring = self._features[:stored]
            newest = (self._count - 1) % self._history
            age = (newest - np.arange(stored)) % stored  # 0 = newest
            sq = self._norms[:stored] - 2.0 * (ring @ feature) + float(feature @ feature)
            sq[age < self._span] = np.inf
            novelty = math.sqrt(max(float(np.min(sq)), 0.0) / self._dim)
        slot = self._count % self._history
        self._norms[slot] = float(feature @ feature)
        self._features[slot] = feature
        self._count += 1
        return novelty


class RobustSpread:
    """Median and scaled median absolute deviation of the last ``size`` values.

    Recomputed every ``every`` updates (a sorted window is not needed for that rate).
    """

    def __init__(self, size: int, every: int = 16) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._every = every
        self._since = every
        self.median = 0.0
        self.spread = 0.0

    def __len__(self) -> int:
        return len(self._values)

    def add(self, value: float) -> None:
        """Record ``value`` (after it has been judged against the current figures)."""
        self._values.append(value)
        self._since += 1
        if self._since >= self._every:
            self._since = 0
            arr = np.fromiter(self._values, dtype=np.float64, count=len(self._values))
            self.median = float(np.median(arr))
            self.spread = 1.4826 * float(np.median(np.abs(arr - self.median)))


class SeasonalResidual:
    """How far the recent values sit from the same time one, two and seven days before.

    The expected value of a point is the median of its peers one and two days earlier,
    and separately its peer one week earlier; the surprise is the smaller of the two
    robust z-scores (a weekend is judged against last weekend, not against Friday) of
    the mean residual over the last ``smooth`` points. A series with no daily history
    yet scores 0. Timestamps are seconds; points may be irregular or missing.
    """

    def __init__(self, smooth: int = 6, spread_size: int = 2000) -> None:
        self._epochs: list[float] = []
        self._values: list[float] = []
        self._smooth = smooth
        self._daily: deque[float] = deque(maxlen=smooth)
        self._weekly: deque[float] = deque(maxlen=smooth)
        self._daily_spread = RobustSpread(spread_size)
        self._weekly_spread = RobustSpread(spread_size)
        self._step = 0.0

    def _peer(self, epoch: float) -> float | None:
        i = bisect.bisect_left(self._epochs, epoch)
        best: float | None = None
        gap = math.inf
        for j in (i - 1, i):
            if 0 <= j < len(self._epochs) and abs(self._epochs[j] - epoch) < gap:
                gap = abs(self._epochs[j] - epoch)
                best = self._values[j]
        return best if gap <= max(self._step, 1.0) * 0.75 else None

    def update(self, value: float, epoch: float) -> float:
        """Consume ``value`` observed at ``epoch``; return the seasonal surprise."""
        if self._epochs:
            step = epoch - self._epochs[-1]
            if step > 0:
                self._step = step if self._step == 0 else 0.99 * self._step + 0.01 * step
        day1 = self._peer(epoch - DAY)
        day2 = self._peer(epoch - 2 * DAY)
        week = self._peer(epoch - WEEK)
        if not self._epochs or epoch >= self._epochs[-1]:
            self._epochs.append(epoch)
            self._values.append(value)
        if len(self._epochs) > 4096 and self._epochs[0] < epoch - WEEK - DAY:
            cut = bisect.bisect_left(self._epochs, epoch - WEEK - DAY)
            del self._epochs[:cut]
            del self._values[:cut]
        surprise = math.inf
        for peers, window, spread in (
            ([p for p in (day1, day2) if p is not None], self._daily, self._daily_spread),
            ([week] if week is not None else [], self._weekly, self._weekly_spread),
        ):
            if not peers:
                continue
            window.append(value - sorted(peers)[len(peers) // 2])
            level = sum(window) / len(window)
            if len(spread) >= 200 and spread.spread > 0:
                surprise = min(surprise, abs(level - spread.median) / spread.spread)
            else:
                surprise = min(surprise, 0.0)
            spread.add(level)
        return 0.0 if math.isinf(surprise) else surprise


class LevelShift:
    """Robust z-score of the mean of the last ``recent`` points against the trailing past.

    The past is the ``baseline`` points before the recent ones; its median is the
    expected level and its scaled MAD the spread (a constant past makes any change a
    large surprise; :class:`RecordScale` then judges it against earlier ones). Catches
    drops, climbs and level shifts as they start.
    """

    def __init__(self, recent: int = 6, baseline: int = 288) -> None:
        self._recent = recent
        self._window: deque[float] = deque(maxlen=recent + baseline)
        self._baseline = baseline
        self._spread = RobustSpread(baseline, every=8)
        self._pending: deque[float] = deque()

    def update(self, value: float) -> float:
        """Consume ``value``; return the level-shift surprise."""
        self._pending.append(value)
        if len(self._pending) > self._recent:
            self._spread.add(self._pending.popleft())
        if len(self._spread) < self._baseline // 2:
            return 0.0
        level = sum(self._pending) / len(self._pending)
        spread = max(self._spread.spread, 1e-9)
        return abs(level - self._spread.median) / spread


class RecordScale:
    """A surprise relative to the largest of the last ``reference`` remembered surprises.

    :meth:`judge` returns ``surprise / max(past)``: above 1 means a new record; nothing
    is judged until ``learning`` surprises have been judged since the first non-zero one
    (a scorer still gathering its own history reports zeros, which are no record to
    beat). :meth:`remember` adds a surprise to the past; a caller leaves out the
    surprises of an anomaly it has reported, which would raise the record and hide the
    next anomaly.
    """

    def __init__(self, reference: int = 2000, learning: int = 300) -> None:
        self._reference = reference
        self._learning = learning
        self._past: deque[float] = deque(maxlen=reference)
        self._max = 0.0
        self._max_age = 0
        self._n = 0

    def judge(self, surprise: float) -> float:
        """The ratio of ``surprise`` to the current record (0 while learning)."""
        if self._n == 0 and surprise <= 0.0:
            return 0.0
        self._n += 1
        if self._n > self._learning and self._past:
            return surprise / (self._max + 1e-9)
        return 0.0

    def remember(self, surprise: float) -> None:
        """Add ``surprise`` to the past that later ones are judged against."""
        if self._n == 0:
            return
        self._past.append(surprise)
        self._max_age += 1
        if surprise >= self._max:
            self._max = surprise
            self._max_age = 0
        elif self._max_age >= len(self._past):
            self._max = max(self._past)
            self._max_age = len(self._past) - 1 - list(self._past).index(self._max)

    def update(self, surprise: float) -> float:
        """Judge ``surprise``, then remember it."""
        ratio = self.judge(surprise)
        self.remember(surprise)
        return ratio
