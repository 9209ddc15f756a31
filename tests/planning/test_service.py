"""The planning service reuses a forecast only while the history behind it is unchanged."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

from meterline.events import ROW_COLUMNS, PriceTable, RawEvent, RouteNormaliser, validate_event
from meterline.metadb import engine_from_url, migrate
from meterline.planning import PlanningService
from meterline.query import QueryService
from meterline.store import Store


def hourly_rows(org: str, hours: int, per_hour: int, *, tag: str) -> list[list[Any]]:
    """``per_hour`` requests in each of the last ``hours`` complete hours."""
    now = int(time.time())
    top = now - now % 3600
    out = []
    for h in range(1, hours + 1):
        for i in range(per_hour):
            raw = msgspec.convert(
                {
                    "event_id": f"{tag}-{h}-{i}",
                    "timestamp": (top - h * 3600 + i * 60) * 1000,
                    "path": "/a",
                    "status": 200,
                    "latency_ms": 5,
                },
                RawEvent,
            )
            row = validate_event(
                raw,
                org_id=org,
                now_ms=now * 1000,
                retention_days=365,
                normaliser=RouteNormaliser(),
                prices=PriceTable(),
            )
            assert isinstance(row, list)
            row[ROW_COLUMNS.index("ingest_batch")] = f"batch-{tag}"
            out.append(row)
    return out


def test_a_back_dated_event_makes_a_new_forecast(chdb_store: Store, tmp_path: Path) -> None:
    engine = engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(engine)
    service = PlanningService(engine, QueryService(chdb_store))
    org = f"org_{uuid.uuid4().hex[:10]}"
    chdb_store.insert_rows(hourly_rows(org, 30 * 24, 10, tag="base"))

    first = service.forecast(org, "requests", 24, "hour")
    assert [r["yhat"] for r in first.rows] == [
        r["yhat"] for r in service.forecast(org, "requests", 24, "hour").rows
    ]

    # The last day doubles after the first forecast: the next one must see it.
    chdb_store.insert_rows(hourly_rows(org, 24, 10, tag="late"))
    second = service.forecast(org, "requests", 24, "hour")
    assert second.series.values[-1] == 20
    assert [r["yhat"] for r in second.rows] != [r["yhat"] for r in first.rows]
