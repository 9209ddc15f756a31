"""Wire schema of one event and its validation into a store row.

Decoding is done by msgspec into :class:`RawEvent`, which checks field types, ranges and
lengths in C (unknown fields are ignored); a batch that fails is decoded again item by
item, so one bad event never fails its neighbours. :func:`validate_event` then applies
the per-type rules of the event contract and returns either an :data:`EventRow` ready
for the store or an :class:`EventRejection` saying what to fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from meterline.events.anonymise import anonymise_ip
from meterline.events.normalise import RouteNormaliser
from meterline.events.pricing import PriceTable

EVENT_TYPES = ("request", "llm", "code_execution", "feedback", "custom")

ROW_COLUMNS: tuple[str, ...] = (
    "org_id",
    "event_id",
    "type",
    "timestamp",
    "received_at",
    "retention_days",
    "method",
    "path",
    "route",
    "status",
    "latency_ms",
    "consumer_id",
    "user_id",
    "api_token_id",
    "region",
    "request_size",
    "response_size",
    "user_agent",
    "client_ip",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "success",
    "session_id",
    "tier",
    "error",
    "agent",
    "chat_id",
    "rating",
    "comment",
    "properties",
    "ingest_batch",
)
"""Column order of :data:`EventRow`, matching the raw ``events`` table."""

EventRow = list[Any]
"""One event as the store keeps it, values in :data:`ROW_COLUMNS` order.

``timestamp`` is epoch milliseconds, ``received_at`` epoch seconds, ``latency_ms`` -1
when unknown and ``success`` -1 when unknown. ``ingest_batch`` is filled by the writer.
"""

_METHODS = frozenset(
    {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"}
)
# Events older than the longest plan's retention, or further ahead than clock skew
# plausibly explains, are refused rather than silently expired or misplaced.
_MAX_AGE_MS = 5 * 366 * 86_400_000
_MAX_FUTURE_MS = 86_400_000
_BIG = 2**53


def _text(limit: int) -> Any:
    return Annotated[str, msgspec.Meta(max_length=limit)]


def _ident(limit: int) -> Any:
    # Identifiers may arrive as numbers; they are stored as text.
    return Annotated[str, msgspec.Meta(max_length=limit)] | int


Count = Annotated[int, msgspec.Meta(ge=0, le=_BIG)]
Amount = Annotated[float, msgspec.Meta(ge=0)]


class RawEvent(msgspec.Struct, forbid_unknown_fields=False, gc=False):
    """An event as sent by a client, with the types and bounds of the event contract.

    Per-type rules (a request needs a path, an llm event a model, …) are checked by
    :func:`validate_event`, which also fills defaults and normalises values.
    """

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | int
    type: Literal["request", "llm", "code_execution", "feedback", "custom"] = "request"
    timestamp: int | float | str | None = None
    properties: dict[str, Any] | None = None
    method: _text(16) = ""  # type: ignore[valid-type]
    path: _text(2048) = ""  # type: ignore[valid-type]
    route: _text(512) = ""  # type: ignore[valid-type]
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    latency_ms: Amount | None = None
    consumer_id: _ident(256) = ""  # type: ignore[valid-type]
    user_id: _ident(256) = ""  # type: ignore[valid-type]
    api_token_id: _ident(256) = ""  # type: ignore[valid-type]
    region: _text(64) = ""  # type: ignore[valid-type]
    request_size: Count = 0
    response_size: Count = 0
    user_agent: str = ""
    client_ip: str = ""
    model: _text(128) = ""  # type: ignore[valid-type]
    input_tokens: Count = 0
    output_tokens: Count = 0
    cost_usd: Amount | None = None
    success: bool | None = None
    session_id: _ident(256) = ""  # type: ignore[valid-type]
    tier: _text(64) = ""  # type: ignore[valid-type]
    error: str = ""
    agent: _text(128) = ""  # type: ignore[valid-type]
    chat_id: _ident(256) = ""  # type: ignore[valid-type]
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    comment: str = ""


def checked_event(**fields: Any) -> RawEvent:
    """A :class:`RawEvent` from Python values, with the same type and bound checks as
    decoding a request (``None`` means absent; numeric strings are accepted for numbers).

    Raises ``msgspec.ValidationError`` naming the field, for importers to report.
    """
    present = {name: value for name, value in fields.items() if value is not None}
    return msgspec.convert(present, RawEvent, strict=False)


@dataclass(frozen=True, slots=True)
class EventRejection:
    """Why one event of a batch was refused: a public error code and a fix-it message."""

    code: str
    message: str


_AT = re.compile(r" - at `\$(?:\[\d+\])?\.?([^`]*)`$")


def rejection_from_decode_error(
    error: msgspec.ValidationError | msgspec.DecodeError,
) -> EventRejection:
    """Turn msgspec's message (``Expected `int` >= 100, got `99` - at `$.status```) into
    one that names the field first."""
    text = str(error)
    if isinstance(error, msgspec.DecodeError) and not isinstance(error, msgspec.ValidationError):
        return EventRejection("VALIDATION_ERROR", "this event is not valid JSON")
    match = _AT.search(text)
    detail = _AT.sub("", text)
    if text.startswith("Object missing required field"):
        field = text.split("`")[1]
        return EventRejection("VALIDATION_ERROR", f"'{field}' is required")
    if match and match.group(1):
        field = match.group(1)
        return EventRejection("VALIDATION_ERROR", f"'{field}': {detail.lower()}")
    if text.startswith("Expected `object`"):
        return EventRejection("VALIDATION_ERROR", "each event must be a JSON object")
    return EventRejection("VALIDATION_ERROR", detail)


class _Invalid(Exception):
    def __init__(self, message: str, code: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.code = code


def parse_timestamp(value: Any) -> int:
    """Return epoch milliseconds from an ISO 8601 string or an epoch-milliseconds number.

    Naive ISO strings are taken as UTC. Raises ``ValueError`` for anything else.
    """
    if isinstance(value, bool):
        raise ValueError("boolean is not a timestamp")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("timestamp must be finite")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise ValueError("timestamp must be an ISO 8601 string or epoch milliseconds")


def _timestamp(raw: RawEvent, now_ms: int, history: bool) -> int:
    if raw.timestamp is None:
        return now_ms
    try:
        ts = parse_timestamp(raw.timestamp)
    except (ValueError, OverflowError, OSError):
        raise _Invalid(
            "'timestamp' must be ISO 8601 (2026-11-23T10:00:00Z) or epoch milliseconds",
            "DATE_FORMAT_INVALID",
        ) from None
    if ts > now_ms + _MAX_FUTURE_MS:
        raise _Invalid("'timestamp' is more than a day in the future; check the clock")
    if not history and ts < now_ms - _MAX_AGE_MS:
        raise _Invalid("'timestamp' is older than any plan keeps data")
    return ts


def validate_event(
    raw: RawEvent,
    *,
    org_id: str,
    now_ms: int,
    retention_days: int,
    normaliser: RouteNormaliser,
    prices: PriceTable,
    history: bool = False,
) -> EventRow | EventRejection:
    """Check one decoded event against the per-type rules and build its store row.

    Never raises: every problem becomes an :class:`EventRejection` naming the field.
    ``history`` lifts the age limit of live events, for imports of old logs.
    """
    try:
        return _build_row(raw, org_id, now_ms, retention_days, normaliser, prices, history)
    except _Invalid as exc:
        return EventRejection(exc.code, str(exc))


def _build_row(
    raw: RawEvent,
    org_id: str,
    now_ms: int,
    retention_days: int,
    normaliser: RouteNormaliser,
    prices: PriceTable,
    history: bool = False,
) -> EventRow:
    kind = raw.type
    ts = _timestamp(raw, now_ms, history)
    props = raw.properties
    props_text = ""
    if props:
        props_text = msgspec.json.encode(props).decode()
        if len(props_text) > 16_384:
            raise _Invalid("'properties' is larger than 16 KiB once encoded")
    method = path = route = ""
    status = 0
    cost = 0.0
    if kind == "request":
        method = raw.method.upper() if raw.method else "GET"
        if method not in _METHODS:
            raise _Invalid(f"'method' must be one of {', '.join(sorted(_METHODS))}")
        path = raw.path.split("?", 1)[0] if raw.path else ""
        route = raw.route or (normaliser.normalise(path) if path else "")
        if not route:
            raise _Invalid("a request event needs 'path' or 'route'")
        if raw.status is None:
            raise _Invalid("'status' is required for a request event")
        status = raw.status
    elif kind == "llm":
        if not raw.model:
            raise _Invalid("an llm event needs 'model'")
        cost = (
            prices.cost(raw.model, raw.input_tokens, raw.output_tokens)
            if raw.cost_usd is None
            else raw.cost_usd
        )
    elif kind == "feedback" and raw.rating is None:
        raise _Invalid("a feedback event needs 'rating' (1 to 5)")
    success = raw.success
    return [
        org_id,
        str(raw.event_id),
        kind,
        ts,
        now_ms // 1000,
        retention_days,
        method,
        path,
        route,
        status,
        -1.0 if raw.latency_ms is None else float(raw.latency_ms),
        str(raw.consumer_id),
        str(raw.user_id),
        str(raw.api_token_id),
        raw.region,
        raw.request_size,
        raw.response_size,
        raw.user_agent[:512],
        anonymise_ip(raw.client_ip) if raw.client_ip else "",
        raw.model,
        raw.input_tokens,
        raw.output_tokens,
        cost,
        -1 if success is None else int(success),
        str(raw.session_id),
        raw.tier,
        raw.error[:1024],
        raw.agent,
        str(raw.chat_id),
        raw.rating or 0,
        raw.comment[:4096],
        props_text,
        "",
    ]
