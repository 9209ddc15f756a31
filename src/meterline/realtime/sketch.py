"""Mergeable sketches for live windows: latency quantiles and distinct consumers.

:class:`LatencySketch` uses the same logarithmic mapping, bin keys and rank rule as the
store's ``quantilesDD(0.01, …)`` and its rollups' bin maps, so a quantile over live
buckets is the value the store answers for the same rows. Distinct consumers are kept
exactly (sets of ids merge without error), matching the store's ``uniqExact``.
"""

from __future__ import annotations

import math

from meterline.store.schema import LATENCY_ACCURACY as RELATIVE_ACCURACY
from meterline.store.schema import LATENCY_MIN as MIN_POSSIBLE
from meterline.store.schema import LATENCY_MULTIPLIER as MULTIPLIER


def bin_key(value: float) -> int:
    """The bin of a value above :data:`MIN_POSSIBLE`."""
    # Truncation toward zero, as the store's mapping casts to int.
    return int(math.log(value) * MULTIPLIER)


def _value(key: int) -> float:
    return math.exp(key / MULTIPLIER) * (1 + RELATIVE_ACCURACY)


class LatencySketch:
    """A DDSketch of non-negative latencies with 1 % relative accuracy; merges losslessly.

    Example:
        >>> sketch = LatencySketch()
        >>> for v in (10.0, 20.0, 30.0):
        ...     sketch.add(v)
        >>> round(sketch.quantile(0.5), 1)
        20.0
    """

    __slots__ = ("bins", "count", "zero_count")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zero_count = 0
        self.count = 0

    def add(self, value: float) -> None:
        """Record one latency (callers pass only values ≥ 0)."""
        if value > MIN_POSSIBLE:
            key = bin_key(value)
            self.bins[key] = self.bins.get(key, 0) + 1
        else:
            self.zero_count += 1
        self.count += 1

    def merge(self, other: LatencySketch) -> None:
        """Add every value recorded in ``other`` to this sketch."""
        bins = self.bins
        for key, n in other.bins.items():
            bins[key] = bins.get(key, 0) + n
        self.zero_count += other.zero_count
        self.count += other.count

    def quantiles(self, levels: tuple[float, ...]) -> list[float | None]:
        """The values at ``levels`` (each in 0–1); ``None`` for an empty sketch."""
        if self.count == 0:
            return [None for _ in levels]
        ordered = sorted(self.bins.items())
        out: list[float | None] = []
        for level in levels:
            rank = level * (self.count - 1)
            if rank < self.zero_count:
                out.append(0.0)
                continue
            rank -= self.zero_count
            running = 0
            found = ordered[-1][0]
            for key, n in ordered:
                running += n
                if running > rank:
                    found = key
                    break
            out.append(_value(found))
        return out

    def quantile(self, level: float) -> float | None:
        """The value at one quantile level."""
        return self.quantiles((level,))[0]


__all__ = [
    "MIN_POSSIBLE",
    "MULTIPLIER",
    "RELATIVE_ACCURACY",
    "LatencySketch",
    "bin_key",
]
