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
from typing import Any

import pyarrow as pa

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
    fast: list[RawEvent] = []
    slow: list[tuple[int, RawEvent | EventRejection]] = []
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

    out = ValidatedBatch(
        batch=_request_columns(fast, org_id, now_ms, retention_days, record_id, normaliser)
    )
    out.event_ids = [e.event_id if type(e.event_id) is str else str(e.event_id) for e in fast]
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


def _text(values: list[Any]) -> pa.Array:
    # Identifiers may arrive as numbers and are stored as text.
    return pa.array([v if type(v) is str else str(v) for v in values], _S)


def _request_columns(
    events: list[RawEvent],
    org_id: str,
    now_ms: int,
    retention_days: int,
    record_id: str,
    normaliser: RouteNormaliser,
) -> pa.RecordBatch:
    """The rows :func:`validate_event` builds for these request events, as columns."""
    size = len(events)
    methods = {m: (m.upper() if m else "GET") for m in {e.method for e in events}}
    paths = [e.path.split("?", 1)[0] if "?" in e.path else e.path for e in events]
    normalise = normaliser.normalise
    routes = [
        e.route or (normalise(path) if path else "") for e, path in zip(events, paths, strict=True)
    ]
    addresses = {ip: (anonymise_ip(ip) if ip else "") for ip in {e.client_ip for e in events}}
    columns: dict[str, pa.Array] = {
        "org_id": pa.array([org_id] * size, _S),
        "event_id": _text([e.event_id for e in events]),
        "type": pa.array(["request"] * size, _S),
        "timestamp": pa.array(
            [now_ms if e.timestamp is None else e.timestamp for e in events], pa.int64()
        ),
        "received_at": pa.array([now_ms // 1000] * size, pa.uint32()),
        "retention_days": pa.array([retention_days] * size, pa.uint16()),
        "method": pa.array([methods[e.method] for e in events], _S),
        "path": pa.array(paths, _S),
        "route": pa.array(routes, _S),
        "status": pa.array([e.status for e in events], pa.uint16()),
        "latency_ms": pa.array(
            [-1.0 if e.latency_ms is None else e.latency_ms for e in events], pa.float64()
        ),
        "consumer_id": _text([e.consumer_id for e in events]),
        "user_id": _text([e.user_id for e in events]),
        "api_token_id": _text([e.api_token_id for e in events]),
        "region": pa.array([e.region for e in events], _S),
        "request_size": pa.array([e.request_size for e in events], pa.uint64()),
        "response_size": pa.array([e.response_size for e in events], pa.uint64()),
        "user_agent": pa.array([e.user_agent[:512] for e in events], _S),
        "client_ip": pa.array([addresses[e.client_ip] for e in events], _S),
        "model": pa.array([e.model for e in events], _S),
        "input_tokens": pa.array([e.input_tokens for e in events], pa.uint64()),
        "output_tokens": pa.array([e.output_tokens for e in events], pa.uint64()),
        # A request's cost is not taken from the client: only llm events carry one.
        "cost_usd": pa.array([0.0] * size, pa.float64()),
        "success": pa.array(
            [-1 if e.success is None else int(e.success) for e in events], pa.int8()
        ),
        "session_id": _text([e.session_id for e in events]),
        "tier": pa.array([e.tier for e in events], _S),
        "error": pa.array([e.error[:1024] for e in events], _S),
        "agent": pa.array([e.agent for e in events], _S),
        "chat_id": _text([e.chat_id for e in events]),
        "rating": pa.array([e.rating or 0 for e in events], pa.uint8()),
        "comment": pa.array([e.comment[:4096] for e in events], _S),
        "properties": pa.array([""] * size, _S),
        "ingest_batch": pa.array([record_id] * size, _S),
    }
    return pa.RecordBatch.from_arrays([columns[n] for n in EVENT_SCHEMA.names], schema=EVENT_SCHEMA)
