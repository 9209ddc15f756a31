"""The live stream: in-memory windows fed by ingest, subscriptions, fan-out and alerts.

Transport-free: the WebSocket route in ``api/routes/stream.py`` adapts a socket onto a
:class:`Connection` and the :class:`StreamHub`; nothing here imports a web framework.
"""

from __future__ import annotations

from meterline.realtime.connection import (
    CLOSE_BAD_REQUEST,
    CLOSE_INVALID_TOKEN,
    CLOSE_LIMIT,
    CLOSE_SCOPE,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOKEN_EXPIRED,
    CLOSE_TOO_BIG,
    Connection,
    ConnectionState,
    IllegalTransitionError,
    encode,
)
from meterline.realtime.hub import StreamHub, error_frame
from meterline.realtime.protocol import SubscriptionSpec, parse_subscribe
from meterline.realtime.seeding import seed_windows
from meterline.realtime.sketch import LatencySketch
from meterline.realtime.tickets import TicketBook
from meterline.realtime.window import LiveWindows

__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_INVALID_TOKEN",
    "CLOSE_LIMIT",
    "CLOSE_SCOPE",
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_TOKEN_EXPIRED",
    "CLOSE_TOO_BIG",
    "Connection",
    "ConnectionState",
    "IllegalTransitionError",
    "LatencySketch",
    "LiveWindows",
    "StreamHub",
    "SubscriptionSpec",
    "TicketBook",
    "encode",
    "error_frame",
    "parse_subscribe",
    "seed_windows",
]
