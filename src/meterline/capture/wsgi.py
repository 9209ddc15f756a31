"""WSGI middleware (Flask and any WSGI app).

It wraps ``start_response`` for the status and the response iterable for its size, and
records the request when the server closes the iterable, so streamed responses count
in full. With Flask the route template is the matched ``url_rule``, noted in the environ by a
teardown hook; :func:`init_flask` installs it in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from meterline.capture.client import CaptureClient, RequestRecord, get_client
from meterline.capture.routes import template

log = logging.getLogger("meterline.capture")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_FLASK_KEY = "meterline.capture"


class _Body:
    """The app's response iterable, counting bytes and recording on ``close()``."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body = body
        self._done = done
        self._size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._size += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self._size)


class MeterlineWSGIMiddleware:
    """Captures every request of a WSGI app.

    Example:
        >>> app.wsgi_app = MeterlineWSGIMiddleware(app.wsgi_app, client)
    """

    def __init__(self, app: WSGIApp, client: CaptureClient | None = None) -> None:
        self.app = app
        self.client = client or get_client()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        client = self.client
        path = environ.get("PATH_INFO", "/")
        if client.exporter is None or client.excluded(path):
            return self.app(environ, start_response)
        started = time.perf_counter()
        wall = time.time()
        status = [500]

        def capture_start(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            try:
                status[0] = int(status_line.split(" ", 1)[0])
            except ValueError:
                pass
            if exc_info is None:
                return start_response(status_line, headers)
            return start_response(status_line, headers, exc_info)

        def done(size: int) -> None:
            latency = (time.perf_counter() - started) * 1000.0
            try:
                self._record(environ, status[0], size, latency, wall)
            except Exception:
                log.exception("Meterline could not record a request")

        try:
            body = self.app(environ, capture_start)
        except BaseException:
            done(0)
            raise
        return _Body(body, done)

    def _record(
        self, environ: Environ, status: int, size: int, latency: float, wall: float
    ) -> None:
        client = self.client
        seen = environ.get(_FLASK_KEY)
        route = seen[0] if seen is not None else None
        try:
            request_size = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            request_size = 0
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded and client.trust_forwarded:
            client_ip: str | None = str(forwarded).split(",", 1)[0].strip()
        else:
            client_ip = environ.get("REMOTE_ADDR")
        kept = None
        if client.header_allowlist:
            kept = {}
            for name in client.header_allowlist:
                value = environ.get("HTTP_" + name.upper().replace("-", "_"))
                if value is not None:
                    kept[name] = str(value)
        consumer = seen[1] if seen is not None else client.consumer(environ)
        client.record_request(
            RequestRecord(
                wall,
                environ.get("REQUEST_METHOD", "GET"),
                route,
                environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/"),
                status,
                latency,
                request_size,
                size,
                client_ip,
                environ.get("HTTP_USER_AGENT"),
                consumer,
                kept or None,
            )
        )


def init_flask(app: Any, client: CaptureClient | None = None) -> MeterlineWSGIMiddleware:
    """Install capture on a Flask app: ``init_flask(app, client)``.

    ``identify`` receives the ``flask.Request``; the route is its ``url_rule``. Both are
    read in a teardown hook, while Flask's request still exists.
    """
    from flask import request

    middleware = MeterlineWSGIMiddleware(app.wsgi_app, client)

    def remember(_exc: BaseException | None) -> None:
        try:
            rule = request.url_rule
            route = template(rule.rule) if rule is not None else None
            request.environ[_FLASK_KEY] = (route, middleware.client.consumer(request))
        except Exception:
            log.exception("Meterline could not read the Flask request")

    app.teardown_request(remember)
    app.wsgi_app = middleware
    return middleware


__all__ = ["MeterlineWSGIMiddleware", "init_flask"]
