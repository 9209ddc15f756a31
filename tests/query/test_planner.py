from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from meterline.query import Filter, MetricQuery, TimeRange, plan_segments
from meterline.store import GRANULARITY_SECONDS, ROLLUP_LEVELS


def q(start: str, end: str, **kw: object) -> MetricQuery:
    tr = TimeRange(
        datetime.fromisoformat(start).replace(tzinfo=UTC),
        datetime.fromisoformat(end).replace(tzinfo=UTC),
    )
    kw.setdefault("metrics", ("requests",))
    return MetricQuery(time_range=tr, **kw)  # type: ignore[arg-type]


def spans(query: MetricQuery) -> list[tuple[str, str, str]]:
    return [
        (
            s.table if s.level is None else f"{s.table}@{s.level}",
            s.start.strftime("%d %H:%M:%S"),
            s.end.strftime("%d %H:%M:%S"),
        )
        for s in plan_segments(query)
    ]


def test_range_is_tiled_without_gaps_or_overlaps() -> None:
    """Over routes, whose buckets hold many rows, the edges are tiled finest-first."""
    query = q(
        "2026-11-01T18:30:15",
        "2026-11-04T05:10:40",
        metrics=("latency_p95",),
        dimensions=("route",),
    )
    assert spans(query) == [
        ("events", "01 18:30:15", "01 18:31:00"),
        ("rollup_endpoints@minute", "01 18:31:00", "01 18:40:00"),
        ("rollup_endpoints@tenminute", "01 18:40:00", "01 19:00:00"),
        ("rollup_endpoints@hour", "01 19:00:00", "02 00:00:00"),
        ("rollup_endpoints@day", "02 00:00:00", "04 00:00:00"),
        ("rollup_endpoints@hour", "04 00:00:00", "04 05:00:00"),
        ("rollup_endpoints@tenminute", "04 05:00:00", "04 05:10:00"),
        ("events", "04 05:10:00", "04 05:10:40"),
    ]


def test_edges_of_a_relative_day_need_few_rows() -> None:
    """A 24-hour range ending at a minute reads at most 9 + 5 buckets per edge below hours."""
    query = q(
        "2026-11-01T10:47:00",
        "2026-11-02T10:47:00",
        metrics=("latency_p95",),
        dimensions=("route",),
    )
    assert spans(query) == [
        ("rollup_endpoints@minute", "01 10:47:00", "01 10:50:00"),
        ("rollup_endpoints@tenminute", "01 10:50:00", "01 11:00:00"),
        ("rollup_endpoints@hour", "01 11:00:00", "02 10:00:00"),
        ("rollup_endpoints@tenminute", "02 10:00:00", "02 10:40:00"),
        ("rollup_endpoints@minute", "02 10:40:00", "02 10:47:00"),
    ]


def test_totals_trade_a_few_more_rows_for_fewer_conditions() -> None:
    """One row per bucket: whole minutes for the edges and hours for a week beat seven
    conditions; a sums-only day reads its minutes in one condition."""
    day = q("2026-11-01T10:47:00", "2026-11-02T10:47:00", metrics=("latency_p95",))
    assert spans(day) == [
        ("rollup_totals@minute", "01 10:47:00", "01 11:00:00"),
        ("rollup_totals@hour", "01 11:00:00", "02 10:00:00"),
        ("rollup_totals@minute", "02 10:00:00", "02 10:47:00"),
    ]
    week = q("2026-11-01T10:47:00", "2026-11-08T10:47:00", metrics=("latency_p95",))
    assert spans(week) == [
        ("rollup_totals@minute", "01 10:47:00", "01 11:00:00"),
        ("rollup_totals@hour", "01 11:00:00", "08 10:00:00"),
        ("rollup_totals@minute", "08 10:00:00", "08 10:47:00"),
    ]
    assert spans(q("2026-11-01T10:47:00", "2026-11-02T10:47:00")) == [
        ("rollup_totals@minute", "01 10:47:00", "02 10:47:00")
    ]
    # Aligned edges need no finer level at all.
    aligned = q("2026-11-01T00:00:00", "2026-11-08T00:00:00", metrics=("latency_p95",))
    assert spans(aligned) == [("rollup_totals@day", "01 00:00:00", "08 00:00:00")]


def test_wide_widths_trade_rows_for_conditions_only_without_states() -> None:
    """Sums are cheap to read: a sums-only week over routes reads hours in one condition."""
    week = ("2026-11-01T10:47:00", "2026-11-08T10:47:00")
    assert [s.level for s in plan_segments(q(*week, dimensions=("route",)))] == [
        "minute",
        "hour",
        "minute",
    ]
    with_sketches = q(*week, dimensions=("route",), metrics=("latency_p95",))
    assert len(plan_segments(with_sketches)) == 7


@pytest.mark.parametrize("seed", range(40))
def test_every_plan_tiles_its_range_exactly(seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(86400 * 3))
    if rng.random() < 0.7:
        start = start.replace(second=0)
    end = start + timedelta(seconds=rng.randrange(1, 86400 * 9))
    metrics = rng.choice([("requests",), ("latency_p95",), ("unique_consumers",)])
    dimensions = rng.choice([(), ("route",), ("consumer_id",), ("status",)])
    granularity = rng.choice([None, None, "minute", "hour", "day"])
    query = MetricQuery(
        metrics=metrics,
        time_range=TimeRange(start, end),
        dimensions=dimensions,
        granularity=granularity,
    )
    segments = plan_segments(query)
    assert segments[0].start == start and segments[-1].end == end
    for before, after in zip(segments, segments[1:], strict=False):
        assert before.end == after.start
    for segment in segments:
        if segment.level is not None:
            seconds = ROLLUP_LEVELS[segment.level][1]
            assert segment.start.timestamp() % seconds == 0
            assert segment.end.timestamp() % seconds == 0
            if granularity:
                assert seconds <= GRANULARITY_SECONDS[granularity]
        else:
            assert segment.is_raw


def test_granularity_caps_the_level() -> None:
    query = q("2026-11-01T00:00:00", "2026-11-03T00:00:00", granularity="hour")
    assert {(s.table, s.level) for s in plan_segments(query)} == {("rollup_totals", "hour")}
    query = q("2026-11-01T00:00:00", "2026-11-01T02:00:00", granularity="minute")
    assert {(s.table, s.level) for s in plan_segments(query)} == {("rollup_totals", "minute")}


def test_width_follows_dimensions_and_filters() -> None:
    base = ("2026-11-01T00:00:00", "2026-11-01T03:00:00")
    assert plan_segments(q(*base, dimensions=("route",)))[0].table == "rollup_endpoints"
    by_class = q(*base, dimensions=("route", "status_class"))
    assert plan_segments(by_class)[0].table == "rollup_routes"
    assert plan_segments(q(*base, dimensions=("consumer_id",)))[0].table == "rollup_consumers"
    filtered = q(*base, filters=(Filter("region", "eq", "DE"),))
    assert plan_segments(filtered)[0].table == "rollup_full"
    assert [s.table for s in plan_segments(q(*base, dimensions=("user_id",)))] == ["events"]


def test_widths_without_minute_level_read_edges_raw() -> None:
    query = q("2026-11-01T00:10:00", "2026-11-01T03:00:00", dimensions=("consumer_id",))
    assert spans(query) == [
        ("events", "01 00:10:00", "01 01:00:00"),
        ("rollup_consumers@hour", "01 01:00:00", "01 03:00:00"),
    ]


def test_raw_only_plan() -> None:
    query = q("2026-11-01T00:00:00", "2026-11-03T00:00:00")
    assert [s.table for s in plan_segments(query, use_rollups=False)] == ["events"]
