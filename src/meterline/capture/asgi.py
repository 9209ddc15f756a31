"""Pure ASGI middleware for Starlette, FastAPI, Litestar and any ASGI app.

It wraps ``send`` to see the status and count response bytes, and records one
:class:`~meterline.capture.client.RequestRecord` after the response, taking the route
template from the framework (FastAPI's ``scope["route"]``, Litestar's
``scope["path_template"]``, Starlette's matched route). Exceptions of the app pass
through untouched and are recorded as status 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from meterline.capture.client import CaptureClient, RequestRecord, get_client
from meterline.capture.routes import template

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("meterline.capture")

_MISSING = object()
_perf = time.perf_counter
_now = time.time


def _route_from_router(router: Any, endpoint: Any, prefix: str = "") -> str | None:
    for route in getattr(router, "routes", ()):
        if getattr(route, "endpoint", None) is endpoint:
            return prefix + str(getattr(route, "path_format", None) or route.path)
        children = getattr(route, "routes", None)
        if children:
            found = _route_from_router(route, endpoint, prefix + str(getattr(route, "path", "")))
            if found is not None:
                return found
    return None


class MeterlineMiddleware:
    """Captures every HTTP request of an ASGI app; adds a few microseconds per request.

    Args:
        app: the ASGI app.
        client: the capture client; the process-wide one (:func:`configure`) when None.

    Example:
        >>> app = FastAPI()
        >>> app.add_middleware(MeterlineMiddleware, client=CaptureClient(url, key))
    """

    def __init__(self, app: ASGIApp, client: CaptureClient | None = None) -> None:
        self.app = app
        self.client = client or get_client()
        self._routes: dict[int, object] = {}
        self._request_type: Any = None
        if self.client.identify is not None:
            try:
                from starlette.requests import Request

                self._request_type = Request
            except ImportError:
                self._request_type = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client
        if (
            scope["type"] != "http"
            or client.exporter is None
            or (client.exclude_paths and scope["path"].startswith(client.exclude_paths))
        ):
            await self.app(scope, receive, send)
            return
        wall = _now()
        started = _perf()
        state = [500, 0]

        async def send_wrapper(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                state[1] += len(message.get("body", b""))
            elif kind == "http.response.start":
                state[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            latency = (_perf() - started) * 1000.0
            try:
                self._record(scope, state[0], state[1], latency, wall)
            except Exception:  # capture must never break the app
                log.exception("Meterline could not record a request")

    def _route(self, scope: Scope) -> str | None:
        # Keyed by the route (FastAPI) or endpoint object, kept alive by the app itself.
        route = scope.get("route")
        if route is not None:
            found = self._routes.get(id(route), _MISSING)
            if found is _MISSING:
                path = getattr(route, "path_format", None) or getattr(route, "path", None)
                found = template(str(path)) if path else None
                self._routes[id(route)] = found
            return found  # type: ignore[return-value]
        path_template = scope.get("path_template")
        if path_template:
            return template(str(path_template))
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return None
        found = self._routes.get(id(endpoint), _MISSING)
        if found is _MISSING:
            path = _route_from_router(scope.get("router"), endpoint)
            found = template(path) if path else None
            self._routes[id(endpoint)] = found
        return found  # type: ignore[return-value]

    def _record(self, scope: Scope, status: int, size: int, latency: float, wall: float) -> None:
        client = self.client
        user_agent = forwarded = None
        request_size = 0
        allow = client.header_allowlist
        kept: dict[str, str] | None = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value
            elif name == b"content-length":
                try:
                    request_size = int(value)
                except ValueError:
                    pass
            elif name == b"x-forwarded-for":
                forwarded = value
            if allow:
                text = name.decode("latin-1")
                if text in allow:
                    if kept is None:
                        kept = {}
                    kept[text] = value.decode("latin-1")
        if forwarded is not None and client.trust_forwarded:
            client_ip: str | None = forwarded.decode("latin-1").split(",", 1)[0].strip()
        else:
            peer = scope.get("client")
            client_ip = peer[0] if peer else None
        consumer = None
        if client.identify is not None:
            request = self._request_type(scope) if self._request_type is not None else scope
            consumer = client.consumer(request)
        client.record_request(
            RequestRecord(
                wall,
                scope["method"],
                self._route(scope),
                scope["path"],
                status,
                latency,
                request_size,
                size,
                client_ip,
                user_agent.decode("latin-1") if user_agent is not None else None,
                consumer,
                kept,
            )
        )


def init_litestar(app: Any, client: CaptureClient | None = None) -> Any:
    """Capture every request of a Litestar app, 404s, 405s and exceptions included.

    Litestar runs middleware given to ``Litestar(middleware=…)`` only for requests that
    matched a route; this wraps the app's outermost handler instead, outside Litestar's
    exception handling, so unmatched paths (normalised) and errors (as the status the
    client got) are captured too. The route template still comes from the router
    (``scope["path_template"]``). Returns ``app``.

    Example:
        >>> app = init_litestar(Litestar(route_handlers=[...]), CaptureClient(url, key))
    """
    app.asgi_handler = MeterlineMiddleware(app.asgi_handler, client)
    return app


__all__ = ["MeterlineMiddleware", "init_litestar"]
