"""Request bodies to events: JSON array, ``{"events": [...]}`` or NDJSON, gzip or not.

A body that cannot be read at all is a request error; an item that cannot be read is
one rejected item, and its neighbours still count.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import msgspec

from meterline.errors import PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from meterline.events import EventRejection, RawEvent

_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
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


def _item(raw: bytes) -> RawEvent | EventRejection:
    try:
        return _EVENT.decode(raw)
    except msgspec.ValidationError:
        return EventRejection("VALIDATION_ERROR", "each event must be a JSON object")
    except msgspec.DecodeError:
        return EventRejection("VALIDATION_ERROR", "this line is not valid JSON")


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
        raws: list[msgspec.Raw] | list[bytes] = [line for line in body.split(b"\n") if line.strip()]
    elif mime in JSON_TYPES:
        raws = _json_items(body)
    else:
        raise UnsupportedMediaTypeError(
            f"Content-Type {mime!r} is not supported",
            details="Send application/json (an array or an object with 'events') "
            "or application/x-ndjson.",
        )
    if len(raws) > max_events:
        raise PayloadTooLargeError(
            f"{len(raws)} events in one request; at most {max_events} are allowed",
            details="Split the events into smaller requests.",
        )
    return DecodedBody([_item(bytes(raw)) for raw in raws])


def _json_items(body: bytes) -> list[msgspec.Raw] | list[bytes]:
    stripped = body.lstrip()
    try:
        if stripped[:1] == b"[":
            return _ITEMS.decode(body)
        if stripped[:1] == b"{":
            envelope = _ENVELOPE.decode(body)
            if "events" in envelope:
                return _ITEMS.decode(envelope["events"])
            if b"\n{" in stripped:
                # A JSON object per line sent as application/json: read it as NDJSON.
                return [line for line in body.split(b"\n") if line.strip()]
            return [msgspec.Raw(body)]
    except msgspec.ValidationError:
        raise ValidationError(
            "'events' must be a JSON array of event objects",
            validation_errors=[{"field": "events", "message": "must be an array"}],
        ) from None
    except msgspec.DecodeError as exc:
        if stripped[:1] == b"{" and b"\n{" in stripped:
            return [line for line in body.split(b"\n") if line.strip()]
        raise ValidationError("the body is not valid JSON", details=str(exc)) from None
    raise ValidationError(
        "the body must be a JSON array, an object with 'events', or NDJSON",
        details='Example: [{"event_id": "e1", "path": "/orders/1", "status": 200}]',
    )


__all__ = ["DecodedBody", "decode_body"]
