"""The planner: which rollup levels answer which part of a query's time range.

A range is cut into segments, each read from the coarsest level that covers it exactly:
whole days from the day level, whole hours from the hour level, whole ten-minute slices
and whole minutes from theirs, and any sub-minute edges from raw events. The rollup
*width* is the narrowest whose key holds every dimension the query groups or filters by;
every level of a width lives in one table, so the rollup part of any range is one read.
A dimension no rollup keeps (``user_id``, ``api_token_id``) sends the whole query to raw
events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from meterline.query.model import MetricQuery
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


def plan_segments(query: MetricQuery, *, use_rollups: bool = True) -> list[Segment]:
    """Cut the query's range into segments, coarsest tables first, in time order.

    ``use_rollups=False`` reads raw events only (the baseline benchmarks compare with).
    """
    width = choose_width(query) if use_rollups else None
    start, end = query.time_range.start, query.time_range.end
    if width is None:
        return [Segment("events", start, end)]
    limit = GRANULARITY_SECONDS[query.granularity] if query.granularity else None
    levels = [
        lv for lv in _LEVELS if lv in width.granularities and (limit is None or _divides(lv, limit))
    ]
    return sorted(_split(start, end, levels, width.name), key=lambda s: s.start)


def _divides(level: str, bucket_seconds: int) -> bool:
    """True when rows of ``level`` fall wholly inside buckets of ``bucket_seconds``."""
    seconds = ROLLUP_LEVELS[level][1]
    return seconds <= bucket_seconds and bucket_seconds % seconds == 0


def _split(start: datetime, end: datetime, levels: list[str], width: str) -> list[Segment]:
    if start >= end:
        return []
    if not levels:
        return [Segment("events", start, end)]
    level, rest = levels[0], levels[1:]
    inner_start, inner_end = _ceil(start, level), _floor(end, level)
    if inner_start >= inner_end:
        return _split(start, end, rest, width)
    return [
        *_split(start, inner_start, rest, width),
        Segment(rollup_table(width), inner_start, inner_end, level),
        *_split(inner_end, end, rest, width),
    ]
