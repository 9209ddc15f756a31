"""Every plan the planner may choose gives the same answers, on a real embedded store.

The cheapest plan (fewest conditions for the totals width) is checked against the
finest-edged tiling that reads the fewest rollup rows (the planner with conditions
costing nothing) and against raw events: counts exactly, percentiles within 2 %.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meterline.query import MetricQuery, OrderBy, QueryService, TimeRange, compile_query, planner
from meterline.store import Store
from tests.helpers import event_row

ORG = "org_plans_agree"
NOW = datetime.fromtimestamp(time.time() // 60 * 60 + 60, tz=UTC)
KPIS = (
    "requests",
    "requests_per_minute",
    "error_rate",
    "errors",
    "latency_avg",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "bandwidth_bytes",
    "events",
    "llm_requests",
)


@pytest.fixture(scope="module")
def store(chdb_store: Store) -> Store:
    """Four days of mixed traffic at random seconds, some LLM calls among the requests."""
    rng = random.Random(7)
    now_ms = int(time.time() * 1000)
    rows = []
    for i in range(4000):
        at = now_ms - rng.randrange(4 * 86_400_000)
        if i % 10 == 0:
            fields: dict[str, Any] = {"type": "llm", "model": "gpt-x", "input_tokens": 10}
        else:
            fields = {
                "method": rng.choice(["GET", "GET", "POST"]),
                "path": f"/items/{rng.randrange(5)}/x{i}",
                "status": rng.choice([200, 200, 200, 201, 302, 404, 429, 500]),
                "latency_ms": round(rng.lognormvariate(4, 0.8), 3),
                "consumer_id": f"cus_{rng.randrange(40)}",
            }
        rows.append(event_row(ORG, now_ms, event_id=f"e{i}", timestamp=at, **fields))
    chdb_store.insert_rows(rows)
    return chdb_store


def span(start: datetime, end: datetime) -> TimeRange:
    return TimeRange(start, end)


QUERIES = {
    "overview 24h": MetricQuery(metrics=KPIS, time_range=span(NOW - timedelta(days=1), NOW)),
    "overview 3d": MetricQuery(metrics=KPIS, time_range=span(NOW - timedelta(days=3), NOW)),
    "overview, sub-minute edges": MetricQuery(
        metrics=KPIS,
        time_range=span(
            NOW - timedelta(days=2, hours=5, minutes=7, seconds=13),
            NOW - timedelta(minutes=31, seconds=40),
        ),
    ),
    "unique consumers 3d": MetricQuery(
        metrics=(*KPIS, "unique_consumers"), time_range=span(NOW - timedelta(days=3), NOW)
    ),
    "requests only 2d": MetricQuery(
        metrics=("requests",), time_range=span(NOW - timedelta(days=2), NOW)
    ),
    "top endpoints 3d": MetricQuery(
        metrics=("requests", "error_rate", "latency_avg", "latency_p95", "latency_p99"),
        dimensions=("method", "route"),
        time_range=span(NOW - timedelta(days=3), NOW),
        order_by=(OrderBy("requests", "desc"),),
        limit=3,
    ),
    "status mix 3d": MetricQuery(
        metrics=("requests",),
        dimensions=("status_class",),
        time_range=span(NOW - timedelta(days=3, minutes=17), NOW),
    ),
    "minute series 3h": MetricQuery(
        metrics=("requests", "errors", "latency_p95"),
        time_range=span(NOW - timedelta(hours=3), NOW),
        granularity="minute",
    ),
    "hour series 3d": MetricQuery(
        metrics=("requests", "latency_p99", "unique_consumers"),
        time_range=span(NOW - timedelta(days=3, minutes=23), NOW),
        granularity="hour",
    ),
    "consumers 30h": MetricQuery(
        metrics=("requests", "latency_p95"),
        dimensions=("consumer_id",),
        time_range=span(NOW - timedelta(hours=30, minutes=11), NOW),
    ),
}


def finest_tiling(query: MetricQuery, monkeypatch: pytest.MonkeyPatch) -> list[planner.Segment]:
    with monkeypatch.context() as patched:
        patched.setattr(planner, "RANGE_COST", 0.0)
        return planner.plan_segments(query)


def test_totals_plans_trade_rows_for_fewer_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    end = datetime(2026, 11, 8, 10, 47, tzinfo=UTC)  # edges in mid-hour, whatever NOW is
    for name in ("overview 24h", "overview 3d", "unique consumers 3d", "requests only 2d"):
        length = QUERIES[name].time_range.end - QUERIES[name].time_range.start
        query = replace(QUERIES[name], time_range=span(end - length, end))
        assert len(planner.plan_segments(query)) < len(finest_tiling(query, monkeypatch)), name


@pytest.mark.parametrize("name", list(QUERIES))
def test_cheapest_plan_answers_like_the_finest_tiling(
    store: Store, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = QUERIES[name]
    service = QueryService(store)
    cheapest = service.run(ORG, query).data
    with monkeypatch.context() as patched:
        patched.setattr(planner, "RANGE_COST", 0.0)
        finest = service.run(ORG, query).data
    assert len(cheapest) == len(finest) and cheapest
    for got, want in zip(cheapest, finest, strict=True):
        if want.get("latency_avg") is not None:
            # Float latencies summed in another order may differ in the last bit.
            want = {**want, "latency_avg": pytest.approx(want["latency_avg"])}
        assert got == want


@pytest.mark.parametrize("name", list(QUERIES))
def test_rollups_agree_with_raw_events(store: Store, name: str) -> None:
    query = QUERIES[name]
    fast = compile_query(query, ORG)
    assert not all(s.is_raw for s in fast.segments)
    slow = compile_query(query, ORG, use_rollups=False)
    rollup_rows = store.select(fast.sql, fast.params)
    raw_rows = store.select(slow.sql, slow.params)
    assert len(rollup_rows) == len(raw_rows) and rollup_rows
    for got, want in zip(rollup_rows, raw_rows, strict=True):
        assert set(got) == set(want)
        for column, value in want.items():
            if column.startswith("m_latency_p") and value is not None:
                assert got[column] == pytest.approx(value, rel=0.02), column
            elif isinstance(value, float):
                assert got[column] == pytest.approx(value, rel=1e-9), column
            else:
                assert got[column] == value, column


@pytest.mark.parametrize("name", ["overview 24h", "top endpoints 3d", "consumers 30h"])
def test_only_metrics_dimensions_and_time_come_out(store: Store, name: str) -> None:
    query = QUERIES[name]
    compiled = compile_query(query, ORG)
    (row, *_) = store.select(compiled.sql, compiled.params)
    wanted = {f"d_{d}" for d in query.dimensions} | {f"m_{m}" for m in query.metrics}
    assert set(row) == wanted | ({"ts"} if query.granularity else set())
