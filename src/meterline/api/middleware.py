"""Pure ASGI middleware: a request id on every request, and per-route request counts."""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestIdMiddleware:
    """Gives each HTTP request an id (``X-Request-ID`` in and out, generated if absent)
    and counts responses by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming[:64] if incoming.isprintable() and incoming else f"req_{secrets.token_hex(8)}"
        )
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            app = scope.get("app")
            services = getattr(getattr(app, "state", None), "services", None)
            route = scope.get("route")
            if services is not None:
                path = getattr(route, "path", "unmatched")
                services.telemetry.http_requests.labels(path, str(status)).inc()
