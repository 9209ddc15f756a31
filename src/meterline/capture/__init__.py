"""The capture SDK: one middleware per framework, LLM usage helpers, a background exporter.

Installed by a plain ``pip install meterline`` and importable with the standard library
alone. Framework modules (``meterline.capture.django``) import their framework lazily.

Example:
    >>> from meterline.capture import CaptureClient, MeterlineMiddleware
    >>> app.add_middleware(MeterlineMiddleware, client=CaptureClient(url, key))
"""

from __future__ import annotations

from meterline.capture.asgi import MeterlineMiddleware, init_litestar
from meterline.capture.client import (
    CaptureClient,
    LLMCall,
    RequestRecord,
    build_event,
    configure,
    get_client,
)
from meterline.capture.exporter import Exporter, ExporterStats
from meterline.capture.routes import normalise, template
from meterline.capture.wsgi import MeterlineWSGIMiddleware, init_flask

__all__ = [
    "CaptureClient",
    "Exporter",
    "ExporterStats",
    "LLMCall",
    "MeterlineMiddleware",
    "MeterlineWSGIMiddleware",
    "RequestRecord",
    "build_event",
    "configure",
    "get_client",
    "init_flask",
    "init_litestar",
    "normalise",
    "template",
]
