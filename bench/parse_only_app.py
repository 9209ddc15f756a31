"""The parse-only ceiling: an endpoint that reads and decodes event batches, then discards
them (no validation, no durability, no store). Run by bench/ingest.py under uvicorn."""

from __future__ import annotations

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.events import RawEvent

_decode = msgspec.json.Decoder(list[RawEvent]).decode


async def events(request: Request) -> Response:
    batch = _decode(await request.body())
    return Response(b'{"accepted":%d}' % len(batch), status_code=202, media_type="application/json")


app = Starlette(routes=[Route("/v2/events", events, methods=["POST"])])
