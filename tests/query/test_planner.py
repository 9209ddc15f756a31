from __future__ import annotations

from datetime import UTC, datetime

from meterline.query import Filter, MetricQuery, TimeRange, plan_segments


def q(start: str, end: str, **kw: object) -> MetricQuery:
    tr = TimeRange(
        datetime.fromisoformat(start).replace(tzinfo=UTC),
        datetime.fromisoformat(end).replace(tzinfo=UTC),
    )
    return MetricQuery(metrics=("requests",), time_range=tr, **kw)  # type: ignore[arg-type]


def spans(query: MetricQuery) -> list[tuple[str, str, str]]:
    return [
        (
            s.table if s.level is None else f"{s.table}@{s.level}",
            s.start.strftime("%d %H:%M:%S"),
            s.end.strftime("%d %H:%M:%S"),
        )
        for s in plan_segments(query)
    ]


def test_range_is_tiled_coarsest_first_without_gaps_or_overlaps() -> None:
    query = q("2026-11-01T22:30:15", "2026-11-04T01:10:40")
    assert spans(query) == [
        ("events", "01 22:30:15", "01 22:31:00"),
        ("rollup_totals@minute", "01 22:31:00", "01 22:40:00"),
        ("rollup_totals@tenminute", "01 22:40:00", "01 23:00:00"),
        ("rollup_totals@hour", "01 23:00:00", "02 00:00:00"),
        ("rollup_totals@day", "02 00:00:00", "04 00:00:00"),
        ("rollup_totals@hour", "04 00:00:00", "04 01:00:00"),
        ("rollup_totals@tenminute", "04 01:00:00", "04 01:10:00"),
        ("events", "04 01:10:00", "04 01:10:40"),
    ]


def test_edges_of_a_relative_day_need_few_rows() -> None:
    """A 24-hour range ending at a minute reads at most 9 + 5 rows per edge below hours."""
    query = q("2026-11-01T10:47:00", "2026-11-02T10:47:00")
    assert spans(query) == [
        ("rollup_totals@minute", "01 10:47:00", "01 10:50:00"),
        ("rollup_totals@tenminute", "01 10:50:00", "01 11:00:00"),
        ("rollup_totals@hour", "01 11:00:00", "02 10:00:00"),
        ("rollup_totals@tenminute", "02 10:00:00", "02 10:40:00"),
        ("rollup_totals@minute", "02 10:40:00", "02 10:47:00"),
    ]


def test_granularity_caps_the_level() -> None:
    query = q("2026-11-01T00:00:00", "2026-11-03T00:00:00", granularity="hour")
    assert {(s.table, s.level) for s in plan_segments(query)} == {("rollup_totals", "hour")}
    query = q("2026-11-01T00:00:00", "2026-11-01T02:00:00", granularity="minute")
    assert {(s.table, s.level) for s in plan_segments(query)} == {("rollup_totals", "minute")}


def test_width_follows_dimensions_and_filters() -> None:
    base = ("2026-11-01T00:00:00", "2026-11-01T03:00:00")
    assert plan_segments(q(*base, dimensions=("route",)))[0].table == "rollup_routes"
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
