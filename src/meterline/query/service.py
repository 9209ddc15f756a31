"""Running metric queries: compile, execute on the store, shape and gap-fill the result."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from meterline.clock import Clock, system_clock, utcnow
from meterline.query.compiler import compile_query
from meterline.query.events import EventQuery, compile_events, shape_event
from meterline.query.model import MetricQuery
from meterline.query.vocabulary import EMPTY_VALUES, METRICS
from meterline.store import GRANULARITY_SECONDS, Store

_ROUNDING = {"latency": 3, "ratio": 6, "rate": 3, "money": 6}


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows keyed by dimension and metric names (plus ``timestamp`` when bucketed)."""

    data: list[dict[str, Any]]
    start: datetime
    end: datetime
    granularity: str | None

    def as_json(self) -> dict[str, Any]:
        """The ``POST /v2/query`` response body."""
        return {
            "data": self.data,
            "start": iso(self.start),
            "end": iso(self.end),
            "granularity": self.granularity,
        }


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix and no sub-second part when it is zero."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_store_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def metric_value(name: str, value: Any) -> Any:
    """A metric's raw value as the API answers it: rounded, empty values defaulted."""
    metric = METRICS[name]
    if metric.kind == "time":
        if value is None:
            return None
        moment = _parse_store_time(value)
        return None if moment.year < 1971 else iso(moment)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return EMPTY_VALUES[metric.kind]
    digits = _ROUNDING.get(metric.kind)
    if digits is not None:
        return round(float(value), digits)
    return int(value) if isinstance(value, float) and value.is_integer() else value


class QueryService:
    """The one way analytics numbers are computed; every route and report calls it.

    Example:
        >>> service = QueryService(store)  # doctest: +SKIP
        >>> service.run("org_1", parse_query({"metrics": ["requests"], "range": "1h"}, now=...))
    """

    def __init__(
        self,
        store: Store,
        clock: Clock = system_clock,
        observe: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self._observe = observe

    def now(self) -> datetime:
        """The service clock's current time (UTC)."""
        return utcnow(self.clock)

    def run(self, org_id: str, query: MetricQuery) -> QueryResult:
        """Compute ``query`` over ``org_id``'s data only; series are gap-filled."""
        compiled = compile_query(query, org_id)
        rows, elapsed = self.store.timed_select(compiled.sql, compiled.params)
        if self._observe is not None:
            self._observe(elapsed)
        data = [self._shape(row, query) for row in rows]
        if query.granularity:
            data = self._series(data, query)
        return QueryResult(data, query.time_range.start, query.time_range.end, query.granularity)

    def events(self, org_id: str, query: EventQuery) -> list[dict[str, Any]]:
        """Matching request events of ``org_id`` only, newest first (see :class:`EventQuery`)."""
        compiled = compile_events(query, org_id)
        rows, elapsed = self.store.timed_select(compiled.sql, compiled.params)
        if self._observe is not None:
            self._observe(elapsed)
        return [shape_event(row, lambda v: iso(_parse_store_time(v))) for row in rows]

    def count_groups(self, org_id: str, query: MetricQuery) -> int:
        """How many distinct dimension combinations ``query`` has (for paging totals)."""
        compiled = compile_query(replace(query, granularity=None), org_id, paged=False)
        rows = self.store.select(f"SELECT count() AS n FROM ({compiled.sql})", compiled.params)
        return int(rows[0]["n"]) if rows else 0

    @staticmethod
    def _shape(row: dict[str, Any], query: MetricQuery) -> dict[str, Any]:
        out: dict[str, Any] = {d: row[f"d_{d}"] for d in query.dimensions}
        if query.granularity:
            out["timestamp"] = iso(_parse_store_time(row["ts"]))
        for name in query.metrics:
            out[name] = metric_value(name, row[f"m_{name}"])
        return out

    def _series(self, data: list[dict[str, Any]], query: MetricQuery) -> list[dict[str, Any]]:
        step = GRANULARITY_SECONDS[query.granularity or "minute"]
        first = int(query.time_range.start.timestamp())
        first -= first % step
        last = query.time_range.end.timestamp()
        stamps = []
        moment = datetime.fromtimestamp(first, tz=UTC)
        while moment.timestamp() < last:
            stamps.append(iso(moment))
            moment += timedelta(seconds=step)
        groups: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
        for row in data:
            key = tuple(row[d] for d in query.dimensions)
            groups.setdefault(key, {})[row["timestamp"]] = row
        if query.dimensions and query.limit is not None:
            rank = query.metrics[0]
            ordered = sorted(
                groups.items(),
                key=lambda kv: -sum(float(r.get(rank) or 0) for r in kv[1].values()),
            )
            groups = dict(ordered[query.offset : query.offset + query.limit])
        if not query.dimensions and not groups:
            groups[()] = {}
        empty = {m: EMPTY_VALUES[METRICS[m].kind] for m in query.metrics}
        filled: list[dict[str, Any]] = []
        for key, by_time in groups.items():
            base = dict(zip(query.dimensions, key, strict=True))
            for stamp in stamps:
                filled.append(by_time.get(stamp) or {**base, "timestamp": stamp, **empty})
        if not query.dimensions:
            descending = any(
                o.field == "timestamp" and o.direction == "desc" for o in query.order_by
            )
            filled.sort(key=lambda r: str(r["timestamp"]), reverse=descending)
        return filled
