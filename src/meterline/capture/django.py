"""Django middleware: add ``"meterline.capture.django.MeterlineMiddleware"`` to MIDDLEWARE.

Configure it with a ``METERLINE`` dict in settings (``url``, ``key``, ``identify`` as a
callable or a dotted path, ``header_allowlist``, ``trust_forwarded``, ``exclude_paths``)
or with the ``METERLINE_URL`` / ``METERLINE_INGEST_KEY`` environment variables. The
route is the resolver's ``route`` (``orders/<int:id>/`` becomes ``/orders/:id/``).
Django is imported only when the middleware is instantiated by Django itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from meterline.capture.client import CaptureClient, RequestRecord, get_client
from meterline.capture.routes import template

log = logging.getLogger("meterline.capture")


_settings_client: CaptureClient | None = None


def settings_client() -> CaptureClient:
    """The client built from the ``METERLINE`` setting, shared by every handler.

    Django builds the middleware chain once per handler (and the test client once per
    client); one exporter serves them all.
    """
    global _settings_client
    if _settings_client is None:
        _settings_client = _client_from_settings()
    return _settings_client


def _client_from_settings() -> CaptureClient:
    from django.conf import settings
    from django.utils.module_loading import import_string

    options = dict(getattr(settings, "METERLINE", {}) or {})
    if not options:
        return get_client()
    identify = options.pop("identify", None)
    if isinstance(identify, str):
        identify = import_string(identify)
    return CaptureClient(
        options.pop("url", None), options.pop("key", None), identify=identify, **options
    )


class MeterlineMiddleware:
    """Captures every request Django serves (sync; Django adapts it under ASGI)."""

    def __init__(self, get_response: Callable[[Any], Any], client: CaptureClient | None = None):
        self.get_response = get_response
        self.client = client or settings_client()

    def __call__(self, request: Any) -> Any:
        client = self.client
        if client.exporter is None or client.excluded(request.path_info):
            return self.get_response(request)
        started = time.perf_counter()
        wall = time.time()
        status = 500
        response = None
        try:
            response = self.get_response(request)
            status = int(response.status_code)
            return response
        finally:
            latency = (time.perf_counter() - started) * 1000.0
            try:
                self._record(request, response, status, latency, wall)
            except Exception:
                log.exception("Meterline could not record a request")

    def _record(
        self, request: Any, response: Any, status: int, latency: float, wall: float
    ) -> None:
        client = self.client
        match = getattr(request, "resolver_match", None)
        route = template(match.route) if match is not None and match.route else None
        meta = request.META
        size = 0
        if response is not None and not getattr(response, "streaming", False):
            size = len(response.content)
        try:
            request_size = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            request_size = 0
        forwarded = meta.get("HTTP_X_FORWARDED_FOR")
        if forwarded and client.trust_forwarded:
            client_ip = str(forwarded).split(",", 1)[0].strip()
        else:
            client_ip = meta.get("REMOTE_ADDR")
        kept = {}
        for name in client.header_allowlist:
            value = meta.get("HTTP_" + name.upper().replace("-", "_"))
            if value is not None:
                kept[name] = str(value)
        client.record_request(
            RequestRecord(
                wall,
                request.method,
                route,
                request.path,
                status,
                latency,
                request_size,
                size,
                client_ip,
                meta.get("HTTP_USER_AGENT"),
                client.consumer(request),
                kept or None,
            )
        )


__all__ = ["MeterlineMiddleware"]
