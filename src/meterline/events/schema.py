"""Wire schema of one event and its validation into a store row.

Decoding is done by msgspec into :class:`RawEvent` (every field optional, unknown fields
ignored) so one bad event never fails its batch; :func:`validate_event` then applies the
per-type rules of the event contract and returns either an :data:`EventRow` ready for
the store or an :class:`EventRejection` saying what to fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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

``timestamp`` is epoch milliseconds, ``received_at`` epoch seconds, ``latency_ms`` NaN
when unknown and ``success`` -1 when unknown. ``ingest_batch`` is filled by the writer.
"""

_METHODS = frozenset(
    {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"}
)
# Events older than the longest plan's retention, or further ahead than clock skew
# plausibly explains, are refused rather than silently expired or misplaced.
_MAX_AGE_MS = 5 * 366 * 86_400_000
_MAX_FUTURE_MS = 86_400_000


class RawEvent(msgspec.Struct, forbid_unknown_fields=False):
    """An event as sent by a client; every field is optional until validated."""

    event_id: Any = None
    type: Any = "request"
    timestamp: Any = None
    properties: Any = None
    method: Any = None
    path: Any = None
    route: Any = None
    status: Any = None
    latency_ms: Any = None
    consumer_id: Any = None
    user_id: Any = None
    api_token_id: Any = None
    region: Any = None
    request_size: Any = None
    response_size: Any = None
    user_agent: Any = None
    client_ip: Any = None
    model: Any = None
    input_tokens: Any = None
    output_tokens: Any = None
    cost_usd: Any = None
    success: Any = None
    session_id: Any = None
    tier: Any = None
    error: Any = None
    agent: Any = None
    chat_id: Any = None
    rating: Any = None
    comment: Any = None


@dataclass(frozen=True, slots=True)
class EventRejection:
    """Why one event of a batch was refused: a public error code and a fix-it message."""

    code: str
    message: str


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


def _text(value: Any, field: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise _Invalid(f"'{field}' is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Invalid(f"'{field}' must be a string")
    text = str(value)
    if len(text) > limit:
        raise _Invalid(f"'{field}' is longer than {limit} characters")
    return text


def _truncated(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _int(value: Any, field: str, lo: int, hi: int, *, default: int | None = None) -> int:
    if value is None:
        if default is None:
            raise _Invalid(f"'{field}' is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise _Invalid(f"'{field}' must be an integer")
    number = int(value)
    if not lo <= number <= hi:
        raise _Invalid(f"'{field}' must be between {lo} and {hi}")
    return number


def _number(value: Any, field: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid(f"'{field}' must be a finite number")
    if value < 0:
        raise _Invalid(f"'{field}' must not be negative")
    return float(value)


def _success(value: Any) -> int:
    if value is None:
        return -1
    if not isinstance(value, bool):
        raise _Invalid("'success' must be true or false")
    return int(value)


_BIG = 2**53


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
    """Check one decoded event against the event contract and build its store row.

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
    event_id = _text(raw.event_id, "event_id", 128, required=True)
    if not event_id:
        raise _Invalid("'event_id' must not be empty")
    kind = raw.type if raw.type is not None else "request"
    if kind not in EVENT_TYPES:
        raise _Invalid(f"'type' must be one of {', '.join(EVENT_TYPES)}")
    if raw.timestamp is None:
        ts = now_ms
    else:
        try:
            ts = parse_timestamp(raw.timestamp)
        except (ValueError, OverflowError, OSError):
            raise _Invalid(
                "'timestamp' must be ISO 8601 (2026-11-23T10:00:00Z) or epoch milliseconds",
                "DATE_FORMAT_INVALID",
            ) from None
        if ts > now_ms + _MAX_FUTURE_MS:
            raise _Invalid("'timestamp' is more than a day in the future; check the clock")
        if ts < (0 if history else now_ms - _MAX_AGE_MS):
            raise _Invalid("'timestamp' is older than any plan keeps data")
    properties = raw.properties
    if properties is None:
        props_text = ""
    elif isinstance(properties, dict):
        props_text = msgspec.json.encode(properties).decode()
        if len(props_text) > 16_384:
            raise _Invalid("'properties' is larger than 16 KiB once encoded")
    else:
        raise _Invalid("'properties' must be an object")

    method = path = route = ""
    status = 0
    latency = _number(raw.latency_ms, "latency_ms")
    request_size = response_size = input_tokens = output_tokens = rating = 0
    cost = 0.0
    model = _text(raw.model, "model", 128)
    if kind == "request":
        method = _text(raw.method, "method", 16).upper() or "GET"
        if method not in _METHODS:
            raise _Invalid(f"'method' must be one of {', '.join(sorted(_METHODS))}")
        path = _text(raw.path, "path", 2048).split("?", 1)[0]
        route = _text(raw.route, "route", 512)
        if not route:
            if not path:
                raise _Invalid("a request event needs 'path' or 'route'")
            route = normaliser.normalise(path)
        status = _int(raw.status, "status", 100, 599)
        request_size = _int(raw.request_size, "request_size", 0, _BIG, default=0)
        response_size = _int(raw.response_size, "response_size", 0, _BIG, default=0)
    elif kind == "llm":
        if not model:
            raise _Invalid("an llm event needs 'model'")
        input_tokens = _int(raw.input_tokens, "input_tokens", 0, _BIG, default=0)
        output_tokens = _int(raw.output_tokens, "output_tokens", 0, _BIG, default=0)
        if raw.cost_usd is None:
            cost = prices.cost(model, input_tokens, output_tokens)
        else:
            cost = _number(raw.cost_usd, "cost_usd")
    elif kind == "feedback":
        rating = _int(raw.rating, "rating", 1, 5)

    return [
        org_id,
        event_id,
        kind,
        ts,
        now_ms // 1000,
        retention_days,
        method,
        path,
        route,
        status,
        latency,
        _text(raw.consumer_id, "consumer_id", 256),
        _text(raw.user_id, "user_id", 256),
        _text(raw.api_token_id, "api_token_id", 256),
        _text(raw.region, "region", 64),
        request_size,
        response_size,
        _truncated(raw.user_agent, 512),
        anonymise_ip(raw.client_ip) if isinstance(raw.client_ip, str) else "",
        model,
        input_tokens,
        output_tokens,
        cost,
        _success(raw.success),
        _text(raw.session_id, "session_id", 256),
        _text(raw.tier, "tier", 64),
        _truncated(raw.error, 1024),
        _text(raw.agent, "agent", 128),
        _text(raw.chat_id, "chat_id", 256),
        rating,
        _truncated(raw.comment, 4096),
        props_text,
        "",
    ]
