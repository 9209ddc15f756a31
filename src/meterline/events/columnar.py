"""Validating a whole batch into an Arrow record batch, column by column.

:func:`validate_event` builds one row at a time; for the common shape of event — a
request with an integer timestamp in range, a known method, a path or route, no
properties — the same values can be built a column at a time, which costs a third as
much. :func:`validate_batch` takes that path for every event of that shape and sends
every other one through :func:`validate_event`, so both produce identical rows (a
property test holds them to it) and every rule and message stays in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import methodcaller
from typing import Any

import pyarrow as pa
from msgspec.structs import astuple

from meterline.events.anonymise import anonymise_ip
from meterline.events.arrow import EVENT_SCHEMA, rows_to_batch
from meterline.events.normalise import RouteNormaliser
from meterline.events.pricing import PriceTable
from meterline.events.schema import (
    _MAX_AGE_MS,
    _MAX_FUTURE_MS,
    _METHODS,
    EventRejection,
    EventRow,
    RawEvent,
    validate_event,
)

_S = pa.string()
_FIELDS = RawEvent.__struct_fields__


@dataclass(slots=True)
class ValidatedBatch:
    """The valid events of a batch as one record batch, their ids in the batch's row
    order, and ``(index, rejection)`` for every refused item."""

    batch: pa.RecordBatch
    event_ids: list[str] = field(default_factory=list)
    rejected: list[tuple[int, EventRejection]] = field(default_factory=list)


def validate_batch(
    items: Sequence[RawEvent | EventRejection],
    *,
    org_id: str,
    now_ms: int,
    retention_days: int,
    record_id: str,
    normaliser: RouteNormaliser,
    prices: PriceTable,
    history: bool = False,
) -> ValidatedBatch:
    """Validate decoded items (rejections from decoding pass through with their index)
    into store rows tagged with ``record_id``; same rules and results as
    :func:`validate_event` applied to each item."""
    oldest = -(2**63) if history else now_ms - _MAX_AGE_MS
    newest = now_ms + _MAX_FUTURE_MS
    columns = _fields(items) if set(map(type, items)) == {RawEvent} else None
    fast: list[RawEvent] = []
    slow: list[tuple[int, RawEvent | EventRejection]] = []
    if columns is not None and _all_fast(columns, oldest, newest):
        fast = list(items)  # type: ignore[arg-type]  # all RawEvent, checked above
    else:
        for index, item in enumerate(items):
            if (
                type(item) is RawEvent
                and item.type == "request"
                and item.status is not None
                and not item.properties
                # A path that is all query string leaves no route: validate_event refuses it.
                and (item.route or item.path[:1] not in ("", "?"))
                and (
                    item.timestamp is None
                    or (type(item.timestamp) is int and oldest <= item.timestamp <= newest)
                )
                and (item.method.upper() if item.method else "GET") in _METHODS
            ):
                fast.append(item)
            else:
                slow.append((index, item))

    # The columns of the whole batch serve when every item turned out fast after all.
    by_field = columns if columns is not None and not slow else _fields(fast)
    out = ValidatedBatch(
        batch=_request_columns(
            by_field, len(fast), org_id, now_ms, retention_days, record_id, normaliser
        ),
        event_ids=_strings(by_field["event_id"]),
    )
    rows: list[EventRow] = []
    for index, item in slow:
        checked = (
            item
            if isinstance(item, EventRejection)
            else validate_event(
                item,
                org_id=org_id,
                now_ms=now_ms,
                retention_days=retention_days,
                normaliser=normaliser,
                prices=prices,
                history=history,
            )
        )
        if isinstance(checked, EventRejection):
            out.rejected.append((index, checked))
            continue
        checked[-1] = record_id
        out.event_ids.append(checked[1])
        rows.append(checked)
    if rows:
        others = rows_to_batch(rows)
        out.batch = (
            others
            if not fast
            else pa.Table.from_batches([out.batch, others]).combine_chunks().to_batches()[0]
        )
    return out


def _array(values: list[Any], kind: pa.DataType) -> pa.Array:
    """``values`` as an array of ``kind``. A column holding one value throughout (most
    optional fields of a batch are all empty) is built from that value alone: pyarrow
    converts a list of empty strings four times slower than other strings, and such
    columns were most of a batch's conversion time."""
    if values.count(values[0]) == len(values):
        return pa.repeat(pa.scalar(values[0], kind), len(values))
    return pa.array(values, kind)


def _constant(value: Any, kind: pa.DataType, size: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), size)


def _strings(values: Sequence[Any]) -> list[str]:
    """Identifiers as text: they may arrive as numbers and are stored as text."""
    if set(map(type, values)) <= {str}:
        return list(values)
    return [v if type(v) is str else str(v) for v in values]


def _text(values: Sequence[Any]) -> pa.Array:
    return _array(_strings(values), _S)


def _clipped(values: list[str], limit: int) -> list[str]:
    """Free-text values cut to ``limit`` characters (the list itself when none is
    longer)."""
    if max(map(len, values)) <= limit:
        return values
    return [v[:limit] if len(v) > limit else v for v in values]


def _fields(events: Sequence[Any]) -> dict[str, tuple[Any, ...]]:
    """The events' values field by field (``RawEvent`` fields): one C-level pass, far
    cheaper than a list per field built attribute by attribute."""
    if not events:
        return dict.fromkeys(_FIELDS, ())
    return dict(zip(_FIELDS, zip(*map(astuple, events), strict=True), strict=True))


def _all_fast(columns: dict[str, tuple[Any, ...]], oldest: int, newest: int) -> bool:
    """Whether every event qualifies for the column path, decided a column at a time:
    the per-event test of :func:`validate_batch`, conservative where a column test
    cannot be exact (any doubt sends the batch through that per-event test)."""
    if set(columns["type"]) != {"request"} or None in columns["status"]:
        return False
    properties = columns["properties"]
    if properties.count(None) != len(properties):
        return False
    # A path that is all query string leaves no route: validate_event refuses it.
    if "" in set(columns["route"]):
        paths = columns["path"]
        if "" in set(paths) or any(map(methodcaller("startswith", "?"), paths)):
            return False
    stamps = columns["timestamp"]
    kinds = set(map(type, stamps))
    if not kinds <= {int, type(None)}:
        return False
    if int in kinds:
        present = [t for t in stamps if t is not None] if type(None) in kinds else stamps
        if min(present) < oldest or max(present) > newest:
            return False
    return all((m.upper() if m else "GET") in _METHODS for m in set(columns["method"]))


def _request_columns(
    by_field: dict[str, tuple[Any, ...]],
    size: int,
    org_id: str,
    now_ms: int,
    retention_days: int,
    record_id: str,
    normaliser: RouteNormaliser,
) -> pa.RecordBatch:
    """The rows :func:`validate_event` builds for these request events, as columns."""
    if not size:
        return pa.RecordBatch.from_pylist([], schema=EVENT_SCHEMA)

    def field(name: str) -> list[Any]:
        return list(by_field[name])

    methods = {m: (m.upper() if m else "GET") for m in set(by_field["method"])}
    paths = [p.split("?", 1)[0] if "?" in p else p for p in field("path")]
    normalise = normaliser.normalise
    routes = [
        route or (normalise(path) if path else "")
        for route, path in zip(field("route"), paths, strict=True)
    ]
    ips = field("client_ip")
    addresses = {ip: (anonymise_ip(ip) if ip else "") for ip in set(ips)}
    stamps = field("timestamp")
    latencies = field("latency_ms")
    successes = field("success")
    columns: dict[str, pa.Array] = {
        "org_id": _constant(org_id, _S, size),
        "event_id": _text(by_field["event_id"]),
        "type": _constant("request", _S, size),
        "timestamp": _array(
            stamps if None not in stamps else [now_ms if t is None else t for t in stamps],
            pa.int64(),
        ),
        "received_at": _constant(now_ms // 1000, pa.uint32(), size),
        "retention_days": _constant(retention_days, pa.uint16(), size),
        "method": _array([methods[m] for m in field("method")], _S),
        "path": _array(paths, _S),
        "route": _array(routes, _S),
        "status": _array(field("status"), pa.uint16()),
        "latency_ms": _array(
            latencies if None not in latencies else [-1.0 if v is None else v for v in latencies],
            pa.float64(),
        ),
        "consumer_id": _text(by_field["consumer_id"]),
        "user_id": _text(by_field["user_id"]),
        "api_token_id": _text(by_field["api_token_id"]),
        "region": _array(field("region"), _S),
        "request_size": _array(field("request_size"), pa.uint64()),
        "response_size": _array(field("response_size"), pa.uint64()),
        "user_agent": _array(_clipped(field("user_agent"), 512), _S),
        "client_ip": _array([addresses[ip] for ip in ips], _S),
        "model": _array(field("model"), _S),
        "input_tokens": _array(field("input_tokens"), pa.uint64()),
        "output_tokens": _array(field("output_tokens"), pa.uint64()),
        # A request's cost is not taken from the client: only llm events carry one.
        "cost_usd": _constant(0.0, pa.float64(), size),
        "success": _array([-1 if v is None else int(v) for v in successes], pa.int8()),
        "session_id": _text(by_field["session_id"]),
        "tier": _array(field("tier"), _S),
        "error": _array(_clipped(field("error"), 1024), _S),
        "agent": _array(field("agent"), _S),
        "chat_id": _text(by_field["chat_id"]),
        "rating": _array([v or 0 for v in field("rating")], pa.uint8()),
        "comment": _array(_clipped(field("comment"), 4096), _S),
        "properties": _constant("", _S, size),
        "ingest_batch": _constant(record_id, _S, size),
    }
    return pa.RecordBatch.from_arrays([columns[n] for n in EVENT_SCHEMA.names], schema=EVENT_SCHEMA)
