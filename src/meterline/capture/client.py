"""The capture client: configuration, the per-request record, and the exporter behind it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from meterline.capture.exporter import Exporter
from meterline.capture.routes import normalise

log = logging.getLogger("meterline.capture")

Identify = Callable[[Any], str | None]
"""User hook: the framework's request object in, the consumer id (or None) out."""


class RequestRecord(NamedTuple):
    """What the middlewares capture about one request: cheap to build, built into an
    event object on the exporter thread."""

    timestamp: float
    method: str
    route: str | None
    path: str
    status: int
    latency_ms: float
    request_size: int
    response_size: int
    client_ip: str | None
    user_agent: str | None
    consumer_id: str | None
    headers: dict[str, str] | None


def _event_id() -> str:
    return os.urandom(16).hex()


def build_event(item: Any) -> dict[str, Any]:
    """The event object for a queued item (a :class:`RequestRecord` or an event dict)."""
    if isinstance(item, RequestRecord):
        event: dict[str, Any] = {
            "event_id": _event_id(),
            "type": "request",
            "timestamp": int(item.timestamp * 1000),
            "method": item.method,
            "route": item.route or normalise(item.path),
            "status": item.status,
            "latency_ms": round(item.latency_ms, 3),
            "request_size": item.request_size,
            "response_size": item.response_size,
        }
        if item.client_ip:
            event["client_ip"] = item.client_ip
        if item.user_agent:
            event["user_agent"] = item.user_agent
        if item.consumer_id:
            event["consumer_id"] = item.consumer_id
        if item.headers:
            event["properties"] = {"headers": item.headers}
        return event
    event = dict(item)
    event.setdefault("event_id", _event_id())
    return event


class CaptureClient:
    """Captures requests and application events for one Meterline org.

    ``url`` and ``key`` default to the ``METERLINE_URL`` and ``METERLINE_INGEST_KEY``
    environment variables; without both the client is disabled and every call is a
    no-op, so an app runs unchanged where Meterline is not configured.

    Args:
        identify: called after each request with the framework's request object; returns
            the consumer id (customer, API key owner) or None. Its errors are logged and
            ignored.
        header_allowlist: request header names copied into ``properties.headers``;
            nothing else from headers, no bodies and no query strings are captured.
        trust_forwarded: take the client IP from ``X-Forwarded-For`` (only behind a proxy
            that sets it; otherwise clients could spoof it).
        exclude_paths: path prefixes not captured (health checks).
        exporter_options: passed to :class:`~meterline.capture.exporter.Exporter`.

    Example:
        >>> client = CaptureClient("http://127.0.0.1:8000", "k_abc.def")
        >>> client.record_llm("gpt-4o", input_tokens=120, output_tokens=40, user_id="u1")
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        identify: Identify | None = None,
        header_allowlist: Iterable[str] = (),
        trust_forwarded: bool = False,
        exclude_paths: Iterable[str] = (),
        enabled: bool = True,
        **exporter_options: Any,
    ) -> None:
        url = url or os.environ.get("METERLINE_URL")
        key = key or os.environ.get("METERLINE_INGEST_KEY")
        self.identify = identify
        self.header_allowlist = frozenset(h.lower() for h in header_allowlist)
        self.trust_forwarded = trust_forwarded
        self.exclude_paths = tuple(exclude_paths)
        self.exporter: Exporter | None = None
        if enabled and url and key:
            self.exporter = Exporter(url, key, builder=build_event, **exporter_options)
        elif enabled:
            log.warning("Meterline capture is off: set METERLINE_URL and METERLINE_INGEST_KEY")

    @property
    def enabled(self) -> bool:
        """Whether captured events are exported."""
        return self.exporter is not None

    def excluded(self, path: str) -> bool:
        """Whether ``path`` is not to be captured."""
        return bool(self.exclude_paths) and path.startswith(self.exclude_paths)

    def consumer(self, request: Any) -> str | None:
        """The consumer id from the ``identify`` hook; None when absent or failing."""
        if self.identify is None:
            return None
        try:
            found = self.identify(request)
        except Exception:
            log.exception("Meterline identify() hook failed; the request is kept without it")
            return None
        return None if found is None else str(found)

    def record_request(self, record: RequestRecord) -> None:
        """Queue a captured request."""
        if self.exporter is not None:
            self.exporter.enqueue(record)

    def record_event(self, event: dict[str, Any]) -> None:
        """Queue any event of the event contract (``custom``, ``feedback``, ...).

        ``event_id`` is generated when absent and ``timestamp`` defaults to now.
        """
        if self.exporter is not None:
            event = dict(event)
            event.setdefault("timestamp", int(time.time() * 1000))
            self.exporter.enqueue(event)

    def record_llm(
        self,
        model: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float | None = None,
        latency_ms: float | None = None,
        success: bool = True,
        user_id: str | None = None,
        session_id: str | None = None,
        tier: str | None = None,
        error: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> None:
        """Queue one LLM call's usage; the server prices it when ``cost_usd`` is None."""
        event: dict[str, Any] = {
            "type": "llm",
            "model": model,
            "input_tokens": int(input_tokens),
            "output_tokens": int(output_tokens),
            "success": bool(success),
        }
        optional = {
            "cost_usd": cost_usd,
            "latency_ms": latency_ms,
            "user_id": user_id,
            "session_id": session_id,
            "tier": tier,
            "error": error,
            "properties": properties,
        }
        event.update({k: v for k, v in optional.items() if v is not None})
        self.record_event(event)

    def track_llm(self, model: str, **fields: Any) -> LLMCall:
        """A context manager timing one LLM call; set tokens with ``call.usage(...)``.

        An exception inside the block records ``success=False`` with its type as
        ``error`` and propagates.
        """
        return LLMCall(self, model, fields)

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything queued; True when done within ``timeout``."""
        return self.exporter.flush(timeout) if self.exporter is not None else True

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop exporting."""
        if self.exporter is not None:
            self.exporter.close(timeout)


class LLMCall:
    """One timed LLM call (see :meth:`CaptureClient.track_llm`)."""

    def __init__(self, client: CaptureClient, model: str, fields: dict[str, Any]) -> None:
        self.client = client
        self.model = model
        self.fields = fields
        self._start = 0.0

    def usage(
        self, input_tokens: int = 0, output_tokens: int = 0, cost_usd: float | None = None
    ) -> None:
        """Set the call's token counts (and cost, when the provider reports it)."""
        self.fields["input_tokens"] = input_tokens
        self.fields["output_tokens"] = output_tokens
        if cost_usd is not None:
            self.fields["cost_usd"] = cost_usd

    def __enter__(self) -> LLMCall:
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        fields = dict(self.fields)
        fields.setdefault("latency_ms", (time.perf_counter() - self._start) * 1000)
        if exc_type is not None:
            fields["success"] = False
            fields.setdefault("error", exc_type.__name__)
        self.client.record_llm(self.model, **fields)


_default: CaptureClient | None = None


def configure(url: str | None = None, key: str | None = None, **options: Any) -> CaptureClient:
    """Create the process-wide client that middlewares use when given none."""
    global _default
    if _default is not None:
        _default.close(timeout=2.0)
    _default = CaptureClient(url, key, **options)
    return _default


def get_client() -> CaptureClient:
    """The process-wide client, configured from the environment on first use."""
    global _default
    if _default is None:
        _default = CaptureClient()
    return _default


__all__ = [
    "CaptureClient",
    "Identify",
    "LLMCall",
    "RequestRecord",
    "build_event",
    "configure",
    "get_client",
]
