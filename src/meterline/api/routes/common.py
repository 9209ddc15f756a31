"""Small helpers shared by the routers: JSON bodies and time ranges from requests."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import Request

from meterline.api.deps import services
from meterline.errors import UnsupportedMediaTypeError, ValidationError
from meterline.query import TimeRange, resolve_range

_json = msgspec.json.Decoder()


async def read_json(request: Request) -> Any:
    """The request body as JSON; 415 for another content type, 400 for malformed JSON."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type not in ("application/json", ""):
        raise UnsupportedMediaTypeError(
            f"Content-Type {content_type!r} is not supported here", details="Send application/json."
        )
    body = await request.body()
    try:
        return _json.decode(body)
    except msgspec.DecodeError as exc:
        raise ValidationError("the body is not valid JSON", details=str(exc)) from None


def time_range(request: Request, default: str = "24h") -> TimeRange:
    """``range`` or ``start``/``end`` from the query string (``24h`` when none is given)."""
    params = request.query_params
    return resolve_range(
        range_=params.get("range"),
        start=params.get("start"),
        end=params.get("end"),
        now=services(request).queries.now(),
        default=default,
    )
