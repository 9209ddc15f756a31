"""The planner: which rollup levels answer which part of a query's time range.

A range is cut into segments, each read from one level of a rollup table (whole days
from the day level, whole hours from the hour level, and so on) and any sub-minute
edges from raw events. The rollup *width* is the narrowest whose key holds every
dimension the query groups or filters by; every level of a width lives in one table, so
the rollup part of any range is one read. A dimension no rollup keeps (``user_id``,
``api_token_id``) sends the whole query to raw events.

Among the exact tilings of a range, the planner picks the cheapest by a small cost
model: each segment is one more (level, bucket range) condition on the read, which
costs the engine about as much as merging a few hundred rows' latency bins, and each
rollup row read costs what its aggregate states cost to merge. So a range over the
one-row-per-bucket totals reads its sub-hour edges as plain minutes and a week as hours
(three conditions instead of up to seven), while a range over routes, whose buckets
hold dozens of rows, keeps the finest tiling that reads the fewest rows unless it reads
sums only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from meterline.query.model import MetricQuery
from meterline.query.vocabulary import INTERMEDIATES, METRICS
from meterline.store import (
    GRANULARITY_SECONDS,
    ROLLUP_LEVELS,
    ROLLUP_WIDTHS,
    RollupWidth,
    rollup_table,
)

_LEVELS = ("day", "hour", "tenminute", "minute")


@dataclass(frozen=True, slots=True)
class Segment:
    """A slice ``[start, end)`` of the range and the table (and level) that answers it.

    ``table`` is ``events`` for raw rows (``level`` is then ``None``), else a rollup
    table, whose rows of ``level`` answer the slice.
    """

    table: str
    start: datetime
    end: datetime
    level: str | None = None

    @property
    def is_raw(self) -> bool:
        """True when this segment scans raw events."""
        return self.table == "events"


def _floor(moment: datetime, level: str) -> datetime:
    seconds = ROLLUP_LEVELS[level][1]
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _ceil(moment: datetime, level: str) -> datetime:
    floored = _floor(moment, level)
    if floored == moment:
        return floored
    return floored + timedelta(seconds=ROLLUP_LEVELS[level][1])


def choose_width(query: MetricQuery) -> RollupWidth | None:
    """The narrowest rollup width covering the query's dimensions, or ``None``."""
    needed = set(query.dimensions) | {f.field for f in query.filters}
    for width in ROLLUP_WIDTHS:
        if needed <= set(width.dimensions):
            return width
    return None


RANGE_COST = 360.0
"""Cost of one more segment (one more ``level``/bucket-range condition on a read) in
units of merging one rollup row's latency bins (~2.2 µs): measured with chDB on 10M
events, each extra condition costs ~0.8 ms of planning and reading."""

RAW_COST_PER_SECOND = 1000.0
"""Scanning raw events, per second of range: far above any rollup row's cost, so raw
events only answer what no rollup level covers (sub-minute edges, or the sub-hour edges
of a width without minute rows)."""

ROWS_PER_BUCKET: dict[str, float] = {"totals": 2.0}
"""Rows of one org in one bucket of a width, as planned for: totals keeps one row per
event type; wider widths keep one per dimension combination (see ``DEFAULT_ROWS``)."""

DEFAULT_ROWS = 60.0
"""Rows per bucket planned for widths keyed by several dimensions (routes: ~60 in the
benchmark's traffic; real APIs have from a handful to thousands)."""

_Plan = tuple[float, list[Segment]]


def row_cost(query: MetricQuery) -> float:
    """What reading one rollup row costs this query (its costliest intermediate)."""
    needs = {need for name in query.metrics for need in METRICS[name].needs}
    return max((INTERMEDIATES[name].row_cost for name in needs), default=0.0)


def plan_segments(query: MetricQuery, *, use_rollups: bool = True) -> list[Segment]:
    """Cut the query's range into segments, in time order, at the least planned cost.

    Every plan is exact: segments tile the range without gaps or overlaps, each rollup
    segment whole buckets of its level. ``use_rollups=False`` reads raw events only (the
    baseline benchmarks compare with).
    """
    width = choose_width(query) if use_rollups else None
    start, end = query.time_range.start, query.time_range.end
    if width is None:
        return [Segment("events", start, end)]
    limit = GRANULARITY_SECONDS[query.granularity] if query.granularity else None
    levels = [
        lv for lv in _LEVELS if lv in width.granularities and (limit is None or _divides(lv, limit))
    ]
    per_bucket = ROWS_PER_BUCKET.get(width.name, DEFAULT_ROWS) * row_cost(query)
    planner = _Tiler(rollup_table(width.name), per_bucket)
    _, segments = planner.cheapest(start, end, tuple(levels))
    return segments


def _divides(level: str, bucket_seconds: int) -> bool:
    """True when rows of ``level`` fall wholly inside buckets of ``bucket_seconds``."""
    seconds = ROLLUP_LEVELS[level][1]
    return seconds <= bucket_seconds and bucket_seconds % seconds == 0


class _Tiler:
    """Finds the cheapest exact tiling of a range by a table's levels (memoised: the
    edges of different middle levels share their sub-tilings)."""

    def __init__(self, table: str, per_bucket: float) -> None:
        self.table = table
        self.per_bucket = per_bucket
        self.memo: dict[tuple[datetime, datetime, tuple[str, ...]], _Plan] = {}

    def cheapest(self, start: datetime, end: datetime, levels: tuple[str, ...]) -> _Plan:
        """The cheapest tiling of ``[start, end)`` by ``levels`` (coarsest first), in time
        order, with its cost.

        A tiling takes whole buckets of one level in the middle and tiles each edge, which
        is shorter than one of those buckets, with finer levels; what no level covers is
        read raw. Ties keep the coarser middle level (fewer rows).
        """
        if start >= end:
            return 0.0, []
        key = (start, end, levels)
        if key in self.memo:
            return self.memo[key]
        raw_cost = RANGE_COST + (end - start).total_seconds() * RAW_COST_PER_SECOND
        best: _Plan = (raw_cost, [Segment("events", start, end)])
        for index, level in enumerate(levels):
            inner_start, inner_end = _ceil(start, level), _floor(end, level)
            if inner_start >= inner_end:
                continue
            finer = levels[index + 1 :]
            buckets = (inner_end - inner_start).total_seconds() / ROLLUP_LEVELS[level][1]
            cost = RANGE_COST + buckets * self.per_bucket
            if cost >= best[0]:
                continue
            left = self.cheapest(start, inner_start, finer)
            right = self.cheapest(inner_end, end, finer)
            cost += left[0] + right[0]
            if cost < best[0]:
                middle = Segment(self.table, inner_start, inner_end, level)
                best = (cost, [*left[1], middle, *right[1]])
        self.memo[key] = best
        return best
