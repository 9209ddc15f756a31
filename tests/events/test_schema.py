from __future__ import annotations

import msgspec
import pytest

from meterline.events import (
    ROW_COLUMNS,
    EventRejection,
    PriceTable,
    RouteNormaliser,
    anonymise_ip,
    parse_timestamp,
    validate_event,
)
from meterline.ingest import decode_body

NOW = 1_790_000_000_000


def check(**fields: object) -> list[object] | EventRejection:
    [raw] = decode_body(
        msgspec.json.encode([fields]),
        content_type="application/json",
        content_encoding="",
        max_bytes=1 << 20,
        max_events=10,
    ).items
    if isinstance(raw, EventRejection):
        return raw
    return validate_event(
        raw,
        org_id="org_a",
        now_ms=NOW,
        retention_days=30,
        normaliser=RouteNormaliser(),
        prices=PriceTable(),
    )


def col(row: object, name: str) -> object:
    assert isinstance(row, list)
    return row[ROW_COLUMNS.index(name)]


def test_request_event_becomes_a_row() -> None:
    row = check(
        event_id="e1",
        timestamp="2026-09-21T10:00:00Z",
        method="post",
        path="/orders/42?x=1",
        status=201,
        latency_ms=12.5,
        consumer_id="acme",
        client_ip="203.0.113.77",
        region="DE",
    )
    assert col(row, "route") == "/orders/:id"
    assert col(row, "path") == "/orders/42"
    assert col(row, "method") == "POST"
    assert col(row, "client_ip") == "203.0.113.0"
    assert col(row, "timestamp") == parse_timestamp("2026-09-21T10:00:00Z")
    assert col(row, "received_at") == NOW // 1000
    assert col(row, "retention_days") == 30
    assert col(row, "org_id") == "org_a"


def test_missing_latency_is_marked_unknown_not_zero() -> None:
    row = check(event_id="e1", path="/a", status=200)
    assert col(row, "latency_ms") == -1.0


def test_given_route_is_kept_as_is() -> None:
    assert (
        col(check(event_id="e", route="/orders/:order_id", status=200), "route")
        == "/orders/:order_id"
    )


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"path": "/a", "status": 200}, "event_id"),
        ({"event_id": "x" * 129, "path": "/a", "status": 200}, "event_id"),
        ({"event_id": "e", "status": 200}, "path"),
        ({"event_id": "e", "path": "/a", "status": 99}, "status"),
        ({"event_id": "e", "path": "/a", "status": "200"}, "status"),
        ({"event_id": "e", "path": "/a", "status": 200, "latency_ms": -1}, "latency_ms"),
        ({"event_id": "e", "path": "/a", "status": 200, "method": "FETCH"}, "method"),
        ({"event_id": "e", "type": "nope"}, "type"),
        ({"event_id": "e", "type": "llm"}, "model"),
        ({"event_id": "e", "type": "feedback", "rating": 6}, "rating"),
        ({"event_id": "e", "path": "/a", "status": 200, "properties": [1]}, "properties"),
    ],
)
def test_bad_fields_are_named(fields: dict[str, object], needle: str) -> None:
    result = check(**fields)
    assert isinstance(result, EventRejection)
    assert result.code == "VALIDATION_ERROR"
    assert needle in result.message


def test_bad_timestamp_has_its_own_code() -> None:
    result = check(event_id="e", path="/a", status=200, timestamp="yesterday")
    assert isinstance(result, EventRejection)
    assert result.code == "DATE_FORMAT_INVALID"


def test_future_timestamp_is_refused() -> None:
    result = check(event_id="e", path="/a", status=200, timestamp=NOW + 2 * 86_400_000)
    assert isinstance(result, EventRejection)
    assert "future" in result.message


def test_llm_cost_comes_from_price_table_when_absent() -> None:
    row = check(
        event_id="e", type="llm", model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=0
    )
    assert col(row, "cost_usd") == pytest.approx(0.15)
    row = check(event_id="e", type="llm", model="gpt-4o-mini", input_tokens=10, cost_usd=2.5)
    assert col(row, "cost_usd") == 2.5


def test_ip_anonymisation() -> None:
    assert anonymise_ip("2001:db8:85a3:1234::7") == "2001:db8:85a3::"
    assert anonymise_ip("::ffff:198.51.100.9") == "198.51.100.0"
    assert anonymise_ip("not-an-ip") == ""


def test_timestamps() -> None:
    assert parse_timestamp(1_700_000_000_123) == 1_700_000_000_123
    assert parse_timestamp("2023-11-14T22:13:20.123Z") == 1_700_000_000_123
    assert parse_timestamp("2023-11-14T23:13:20.123+01:00") == 1_700_000_000_123
    with pytest.raises(ValueError):
        parse_timestamp(True)
