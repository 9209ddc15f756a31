"""Recent events: the individual request events behind a metric, newest first.

The aggregate model answers "how many"; an on-call engineer next asks "which ones". An
:class:`EventQuery` takes the same filters and time range as a :class:`MetricQuery`
(dimensions from the one vocabulary, values as bound parameters, always scoped to one
org) and lists a fixed set of columns of matching raw request events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meterline.errors import ValidationError
from meterline.query.compiler import CompiledQuery, Params, filter_sql, store_time
from meterline.query.model import Filter
from meterline.query.planner import Segment
from meterline.query.timerange import TimeRange

EVENT_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "event_id",
    "method",
    "route",
    "path",
    "status",
    "latency_ms",
    "consumer_id",
    "region",
    "error",
)
"""What each listed event shows: enough to find it, nothing identifying an end user
(no client IP, user agent or free-form properties)."""

MAX_EVENTS = 500
_TIME = "DateTime64(3, 'UTC')"
ERROR_FILTER = Filter("status", "gte", 400)
"""An error is a request answered 4xx or 5xx (the vocabulary's ``errors``)."""


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Request events in ``time_range`` matching every filter, newest first, at most
    ``limit`` of them."""

    time_range: TimeRange
    filters: tuple[Filter, ...] = ()
    limit: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_EVENTS:
            raise ValidationError(
                f"limit must be from 1 to {MAX_EVENTS}",
                validation_errors=[{"field": "limit", "message": f"1 to {MAX_EVENTS}"}],
            )


def compile_events(query: EventQuery, org_id: str) -> CompiledQuery:
    """One parameterised statement over raw events for ``org_id`` only."""
    params = Params()
    where = [
        f"org_id = {params.bind(org_id, 'String')}",
        "type = 'request'",
        f"timestamp >= {params.bind(store_time(query.time_range.start, True), _TIME)}",
        f"timestamp < {params.bind(store_time(query.time_range.end, True), _TIME)}",
        *(filter_sql(f, params) for f in query.filters),
    ]
    sql = (
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM {{db}}.events WHERE {' AND '.join(where)}"
        f" ORDER BY timestamp DESC, event_id LIMIT {int(query.limit)}"
    )
    segment = Segment("events", query.time_range.start, query.time_range.end)
    return CompiledQuery(sql, params.values, (segment,))


def shape_event(row: dict[str, Any], iso_time: Any) -> dict[str, Any]:
    """A stored row as the API answers it (ISO timestamp, numbers as numbers)."""
    out = {name: row[name] for name in EVENT_COLUMNS}
    out["timestamp"] = iso_time(row["timestamp"])
    out["status"] = int(row["status"])
    out["latency_ms"] = round(float(row["latency_ms"]), 3)
    return out
