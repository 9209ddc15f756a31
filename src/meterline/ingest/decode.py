"""Request bodies to events: JSON array, ``{"events": [...]}`` or NDJSON, gzip or not.

A body that cannot be read at all is a request error; an item that cannot be read is
one rejected item, and its neighbours still count.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import msgspec

from meterline.errors import PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from meterline.events import EventRejection, RawEvent, rejection_from_decode_error

_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_TYPED_ITEMS = msgspec.json.Decoder(list[RawEvent])
_ENVELOPE = msgspec.json.Decoder(dict[str, msgspec.Raw])
_EVENT = msgspec.json.Decoder(RawEvent)

JSON_TYPES = ("application/json", "text/json", "")
NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
)


@dataclass(frozen=True, slots=True)
class DecodedBody:
    """Items of a body in order: a decoded event or the reason it could not be read."""

    items: list[RawEvent | EventRejection]


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        raise ValidationError(
            "the body is not valid gzip", details="Send gzip data with Content-Encoding: gzip."
        ) from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise PayloadTooLargeError(
            f"the decompressed body is larger than {max_bytes // (1024 * 1024)} MB",
            details="Split the events into smaller requests.",
        )
    return data


def _item(raw: bytes | msgspec.Raw) -> RawEvent | EventRejection:
    try:
        return _EVENT.decode(raw)
    except msgspec.DecodeError as exc:
        return rejection_from_decode_error(exc)


def decode_body(
    body: bytes, *, content_type: str, content_encoding: str, max_bytes: int, max_events: int
) -> DecodedBody:
    """Split a request body into events; raises for a body that is unreadable as a whole."""
    if len(body) > max_bytes:
        raise PayloadTooLargeError(
            f"the body is larger than {max_bytes // (1024 * 1024)} MB",
            details="Split the events into smaller requests.",
        )
    encoding = content_encoding.strip().lower()
    if encoding == "gzip" or (not encoding and body[:2] == b"\x1f\x8b"):
        body = _gunzip(body, max_bytes)
    elif encoding not in ("", "identity"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {content_encoding!r} is not supported", details="Use gzip or none."
        )
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in NDJSON_TYPES:
        items = _lines(body)
    elif mime in JSON_TYPES:
        items = _json_items(body, max_events)
    else:
        raise UnsupportedMediaTypeError(
            f"Content-Type {mime!r} is not supported",
            details="Send application/json (an array or an object with 'events') "
            "or application/x-ndjson.",
        )
    _check_count(len(items), max_events)
    return DecodedBody(items)


def _check_count(count: int, max_events: int) -> None:
    if count > max_events:
        raise PayloadTooLargeError(
            f"{count} events in one request; at most {max_events} are allowed",
            details="Split the events into smaller requests.",
        )


def _array(array: bytes | msgspec.Raw, max_events: int) -> list[RawEvent | EventRejection]:
    """Decode a JSON array of events: all at once in C when every item is valid (the
    common case), else item by item so each problem is reported at its index."""
    try:
        typed: list[RawEvent | EventRejection] = list(_TYPED_ITEMS.decode(array))
    except msgspec.ValidationError:
        raws = _ITEMS.decode(array)
        _check_count(len(raws), max_events)
        return [_item(raw) for raw in raws]
    _check_count(len(typed), max_events)
    return typed


def _lines(body: bytes) -> list[RawEvent | EventRejection]:
    return [_item(line) for line in body.split(b"\n") if line.strip()]


def _json_items(body: bytes, max_events: int) -> list[RawEvent | EventRejection]:
    stripped = body.lstrip()
    try:
        if stripped[:1] == b"[":
            return _array(body, max_events)
        if stripped[:1] == b"{":
            if b"\n{" in stripped.rstrip():
                # A JSON object per line sent as application/json: read it as NDJSON.
                return _lines(body)
            envelope = _ENVELOPE.decode(body)
            if "events" in envelope:
                return _array(envelope["events"], max_events)
            return [_item(body)]
    except msgspec.ValidationError:
        raise ValidationError(
            "'events' must be a JSON array of event objects",
            validation_errors=[{"field": "events", "message": "must be an array"}],
        ) from None
    except msgspec.DecodeError as exc:
        raise ValidationError("the body is not valid JSON", details=str(exc)) from None
    raise ValidationError(
        "the body must be a JSON array, an object with 'events', or NDJSON",
        details='Example: [{"event_id": "e1", "path": "/orders/1", "status": 200}]',
    )


__all__ = ["DecodedBody", "decode_body"]
