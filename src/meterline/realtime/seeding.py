"""Filling live windows from the store at start-up, and long windows from queries."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from meterline.events import ROW_COLUMNS
from meterline.query import MetricQuery, QueryService, TimeRange
from meterline.realtime.catalogue import vocabulary_name
from meterline.realtime.window import KEPT_SECONDS, LIVE_COLUMNS, LiveWindows
from meterline.store import Store

log = logging.getLogger(__name__)


def seed_windows(windows: LiveWindows, store: Store, now: float) -> int:
    """Load the events of the kept live span from the store (run before ingest opens,
    so after a restart live values already cover what was acknowledged before it)."""
    since = datetime.fromtimestamp(int(now) - KEPT_SECONDS, tz=UTC)
    started = time.perf_counter()
    rows = store.select(
        f"SELECT {', '.join(LIVE_COLUMNS)}, toUnixTimestamp64Milli(timestamp) AS ts "
        "FROM {db}.events WHERE timestamp >= {since:DateTime64(3, 'UTC')}",
        {"since": since.strftime("%Y-%m-%d %H:%M:%S")},
    )
    width = len(ROW_COLUMNS)
    index = {name: ROW_COLUMNS.index(name) for name in LIVE_COLUMNS}
    ts_index = ROW_COLUMNS.index("timestamp")
    batch: list[list[Any]] = []
    for found in rows:
        row: list[Any] = [None] * width
        for name, i in index.items():
            row[i] = found[name]
        row[ts_index] = int(found["ts"])
        batch.append(row)
    windows.add_rows(batch)
    log.info(
        "live windows seeded with %d events in %.2fs", len(batch), time.perf_counter() - started
    )
    return len(batch)


def query_window(
    queries: QueryService,
    org_id: str,
    metrics: tuple[str, ...],
    filters: Any,
    start: int,
    end: int,
    granularity: str | None = None,
) -> list[dict[str, Any]]:
    """Stream metric values over ``[start, end)`` computed by the query service: one row
    for the whole window, or one per ``granularity`` bucket (gap-filled)."""
    vocab = tuple(dict.fromkeys(vocabulary_name(m) for m in metrics))
    query = MetricQuery(
        metrics=vocab,
        time_range=TimeRange(
            datetime.fromtimestamp(start, tz=UTC), datetime.fromtimestamp(end, tz=UTC)
        ),
        filters=tuple(filters),
        granularity=granularity,
    )
    data = queries.run(org_id, query).data or [{}]
    return [{m: row.get(vocabulary_name(m)) for m in metrics} for row in data]
