"""The store contract, run against every backend this machine can run."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
import pytest

from meterline.events import ROW_COLUMNS, PriceTable, RawEvent, RouteNormaliser, validate_event
from meterline.store import Store, rollup_table
from tests.backends import ALL_STORES

pytestmark = pytest.mark.parametrize("store", ALL_STORES, indirect=True)


def rows_for(
    org: str, n: int, *, received_s: int | None = None, retention: int = 30, **fields: Any
) -> list[list[Any]]:
    now_ms = int(time.time() * 1000)
    out = []
    for i in range(n):
        raw = msgspec.convert(
            {
                "event_id": f"{org}-{i}",
                "path": f"/r/{i % 3}",
                "status": 200,
                "latency_ms": 10 + i,
                **fields,
            },
            RawEvent,
        )
        row = validate_event(
            raw,
            org_id=org,
            now_ms=now_ms,
            retention_days=retention,
            normaliser=RouteNormaliser(),
            prices=PriceTable(),
        )
        assert isinstance(row, list)
        if received_s is not None:
            row[ROW_COLUMNS.index("received_at")] = received_s
        row[ROW_COLUMNS.index("ingest_batch")] = f"batch-{org}"
        out.append(row)
    return out


def count(store: Store, table: str, org: str, column: str = "count()") -> int:
    rows = store.select(
        f"SELECT {column} AS n FROM {{db}}.{table} WHERE org_id = {{o:String}}", {"o": org}
    )
    return int(rows[0]["n"] or 0)


def org() -> str:
    return f"org_{uuid.uuid4().hex[:10]}"


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == []


def test_insert_feeds_raw_and_every_rollup(store: Store) -> None:
    o = org()
    store.insert_rows(rows_for(o, 30))
    assert count(store, "events", o) == 30
    for width, levels in (
        ("totals", ("minute", "tenminute", "hour", "day")),
        ("endpoints", ("minute", "tenminute", "hour", "day")),
        ("routes", ("minute", "tenminute", "hour", "day")),
        ("consumers", ("hour", "day")),
        ("full", ("hour", "day")),
    ):
        rows = store.select(
            f"SELECT toString(level) AS level, sum(requests) AS n "
            f"FROM {{db}}.{rollup_table(width)} WHERE org_id = {{o:String}} GROUP BY level",
            {"o": o},
        )
        assert {r["level"]: r["n"] for r in rows} == dict.fromkeys(levels, 30), width


def test_inserted_batches_reports_what_landed(store: Store) -> None:
    o = org()
    store.insert_rows(rows_for(o, 3))
    assert store.inserted_batches([f"batch-{o}", "batch-never"]) == {f"batch-{o}"}


def test_values_with_quotes_and_escapes_round_trip(store: Store) -> None:
    o = org()
    nasty = "a'b\"c\\d\ne\tf"
    store.insert_rows(rows_for(o, 1, consumer_id=nasty))
    found = store.select(
        "SELECT consumer_id FROM {db}.events "
        "WHERE org_id = {o:String} AND consumer_id = {c:String}",
        {"o": o, "c": nasty},
    )
    assert found == [{"consumer_id": nasty}]


def test_retention_expires_rows_by_receive_time(store: Store) -> None:
    old, kept = org(), org()
    long_ago = int(time.time()) - 40 * 86400
    store.insert_rows(rows_for(old, 5, received_s=long_ago, retention=30))
    store.insert_rows(rows_for(kept, 5, received_s=long_ago, retention=365))
    for table in ("events", rollup_table("totals"), rollup_table("full")):
        store.command(f"OPTIMIZE TABLE {{db}}.{table} FINAL")
        assert count(store, table, old) == 0, table
        assert count(store, table, kept) > 0, table


def test_erasure_removes_one_consumer_only(store: Store) -> None:
    o = org()
    store.insert_rows(rows_for(o, 4, consumer_id="erase-me"))
    other = rows_for(o, 2, consumer_id="keep-me")
    for row in other:
        row[ROW_COLUMNS.index("event_id")] += "-k"
    store.insert_rows(other)
    store.erase_consumer(o, "erase-me")
    assert count(store, "events", o) == 2
    rows = store.select(
        f"SELECT DISTINCT toString(level) AS level, consumer_id "
        f"FROM {{db}}.{rollup_table('consumers')} WHERE org_id = {{o:String}} ORDER BY level",
        {"o": o},
    )
    assert sorted((r["level"], r["consumer_id"]) for r in rows) == [
        ("day", "keep-me"),
        ("hour", "keep-me"),
    ]
