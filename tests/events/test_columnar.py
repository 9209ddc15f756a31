"""Batch validation by columns gives exactly the rows and rejections of row-by-row validation."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.events import EventRejection, PriceTable, RawEvent, RouteNormaliser, validate_event
from meterline.events.arrow import EVENT_SCHEMA, rows_to_batch
from meterline.events.columnar import validate_batch

NOW_MS = 1_790_000_000_000
DAY_MS = 86_400_000

events = st.fixed_dictionaries(
    {"event_id": st.one_of(st.text(min_size=1, max_size=4), st.integers(0, 10**6))},
    optional={
        "type": st.sampled_from(["request", "llm", "custom", "feedback"]),
        "timestamp": st.one_of(
            st.integers(NOW_MS - 6 * 366 * DAY_MS, NOW_MS + 2 * DAY_MS),
            st.just(NOW_MS - 1000),
            st.just(float(NOW_MS)),
            st.just("2026-09-21T12:00:00Z"),
            st.just("not a date"),
        ),
        "method": st.sampled_from(["", "get", "POST", "patch", "BREW"]),
        "path": st.sampled_from(
            ["", "/orders/123", "/a/b?x=1", "?q=1", "/u/9f1c2d3e-aaaa-bbbb-cccc-0123456789ab"]
        ),
        "route": st.sampled_from(["", "/orders/:id"]),
        "status": st.sampled_from([200, 301, 404, 503]),
        "latency_ms": st.one_of(st.integers(0, 5000), st.floats(0, 5000)),
        "consumer_id": st.one_of(st.text(max_size=5), st.integers(0, 99)),
        "user_id": st.one_of(st.text(max_size=3), st.integers(0, 9)),
        "session_id": st.integers(0, 9),
        "region": st.sampled_from(["", "EU", "US"]),
        "request_size": st.integers(0, 10**6),
        "response_size": st.integers(0, 10**6),
        "user_agent": st.one_of(st.text(max_size=8), st.just("u" * 600)),
        "client_ip": st.sampled_from(
            ["", "203.0.113.77", "2001:db8::1", "::ffff:10.1.2.3", "nope"]
        ),
        "model": st.sampled_from(["", "gpt-4o", "unknown-model"]),
        "input_tokens": st.integers(0, 10**5),
        "output_tokens": st.integers(0, 10**5),
        "cost_usd": st.floats(0, 10),
        "success": st.booleans(),
        "rating": st.integers(1, 5),
        "error": st.one_of(st.text(max_size=8), st.just("e" * 1100)),
        "comment": st.one_of(st.text(max_size=8), st.just("c" * 5000)),
        "properties": st.sampled_from([{}, {"plan": "pro"}]),
    },
)


def _rows(batch: Any) -> list[tuple[Any, ...]]:
    columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
    return sorted(zip(*columns, strict=True), key=repr)


requests = events.map(
    lambda e: {
        **{k: v for k, v in e.items() if k not in ("type", "properties")},
        "status": e.get("status", 200),
        "path": e.get("path") or "/orders/1",
    }
)
"""Events of the shape a whole batch is validated column by column (all requests with a
status, no properties), within which values vary as in :data:`events`."""


@settings(max_examples=150, deadline=None)
@given(st.lists(events, max_size=40), st.booleans())
def test_columns_equal_rows(items: list[dict[str, Any]], history: bool) -> None:
    _check_against_rows(items, history)


@settings(max_examples=150, deadline=None)
@given(st.lists(requests, min_size=1, max_size=40), st.booleans())
def test_request_batches_equal_rows(items: list[dict[str, Any]], history: bool) -> None:
    _check_against_rows(items, history)


def _check_against_rows(items: list[dict[str, Any]], history: bool) -> None:
    raw: list[RawEvent | EventRejection] = [msgspec.convert(i, RawEvent) for i in items]
    normaliser, prices = RouteNormaliser(), PriceTable()
    expected_rows = []
    expected_rejections = []
    for index, item in enumerate(raw):
        assert isinstance(item, RawEvent)
        checked = validate_event(
            item,
            org_id="org",
            now_ms=NOW_MS,
            retention_days=30,
            normaliser=normaliser,
            prices=prices,
            history=history,
        )
        if isinstance(checked, EventRejection):
            expected_rejections.append((index, checked))
        else:
            checked[-1] = "rec-1"
            expected_rows.append(checked)
    got = validate_batch(
        raw,
        org_id="org",
        now_ms=NOW_MS,
        retention_days=30,
        record_id="rec-1",
        normaliser=normaliser,
        prices=prices,
        history=history,
    )
    assert got.batch.schema == EVENT_SCHEMA
    assert _rows(got.batch) == _rows(rows_to_batch(expected_rows))
    assert sorted(got.rejected, key=lambda r: r[0]) == expected_rejections
    assert got.event_ids == got.batch.column("event_id").to_pylist()


def test_decoding_rejections_keep_their_index() -> None:
    bad = EventRejection("VALIDATION_ERROR", "'status': expected int")
    good = msgspec.convert({"event_id": "a", "path": "/x", "status": 200}, RawEvent)
    got = validate_batch(
        [good, bad, good],
        org_id="org",
        now_ms=NOW_MS,
        retention_days=30,
        record_id="r",
        normaliser=RouteNormaliser(),
        prices=PriceTable(),
    )
    assert got.rejected == [(1, bad)]
    assert got.event_ids == ["a", "a"] and got.batch.num_rows == 2
