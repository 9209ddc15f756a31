"""Direct frame writes for ``/v2/stream`` sockets served by uvicorn's websockets-sansio
protocol, and the middleware that makes the server's ``send`` reachable for them.

ASGI moves one message per ``send`` call, through the framework, the server and the
protocol library, then one write to the socket. A stream update goes to hundreds of
sockets several times a second, so that per-message path is most of the fan-out's CPU.
When the server is uvicorn's ``websockets-sansio`` protocol and no extension (per-message
deflate) was negotiated, a server-to-client text frame is only a header and the payload:
the hub builds those bytes once and each connection writes everything queued in one
transport write, with the protocol's own flow control (``writable``). Anything else
(another server, deflate negotiated, ``METERLINE_STREAM_DIRECT_WRITES=0``) uses the plain
ASGI ``send``.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.protocol import State

SERVER_SEND = "meterline.server_send"
"""Scope key under which :class:`ServerSendMiddleware` keeps the server's own ``send``."""
_PROTOCOL = "WebSocketsSansIOProtocol"


class ServerSendMiddleware:
    """Keeps the ASGI server's ``send`` callable in a WebSocket scope (outermost
    middleware, so no other layer has wrapped it yet)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


class UvicornDirectSocket:
    """A :class:`meterline.realtime.connection.DirectSocket` over uvicorn's
    websockets-sansio protocol object."""

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    def writable(self) -> bool:
        """False while uvicorn has paused writing (transport buffer over its high mark)."""
        return bool(self._protocol.writable.is_set())

    async def wait_writable(self) -> None:
        """Wait until uvicorn resumes writing (also set when the connection is lost)."""
        await self._protocol.writable.wait()

    def closing(self) -> bool:
        """True once a close was sent or received, or the transport is going away."""
        p = self._protocol
        return bool(
            p.disconnected
            or p.close_sent
            or p.transport.is_closing()
            or p.conn.state is not State.OPEN
        )

    def write(self, data: bytes) -> None:
        """Queue whole frames on the transport."""
        self._protocol.transport.write(data)


def direct_socket(scope: Scope) -> UvicornDirectSocket | None:
    """A direct socket for an accepted WebSocket, or ``None`` when frames must go
    through ASGI (not uvicorn's sansio protocol, or an extension was negotiated)."""
    protocol: Any = getattr(scope.get(SERVER_SEND), "__self__", None)
    if protocol is None or type(protocol).__name__ != _PROTOCOL:
        return None
    needed = ("writable", "transport", "conn", "disconnected", "close_sent")
    if not all(hasattr(protocol, name) for name in needed):
        return None
    if getattr(protocol.conn, "extensions", None) != []:
        return None  # per-message deflate: each socket compresses with its own context
    return UvicornDirectSocket(protocol)
