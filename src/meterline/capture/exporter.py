"""The background exporter: batches captured events and ships them to ``POST /v2/events``.

The request path only calls :meth:`Exporter.enqueue` (a bounded ``deque`` append); a
daemon thread builds event objects, batches them by size and by interval, gzips them and
sends them with the standard library's ``http.client``, retrying network errors, 5xx and
429 with exponential backoff and full jitter (honouring ``Retry-After``). When the queue
is full the oldest items are dropped and counted. After ``fork()`` the child starts with
an empty queue and a fresh thread, so pre-fork servers (gunicorn, uvicorn ``--workers``)
keep exporting from every worker.
"""

from __future__ import annotations

import atexit
import email.utils
import gzip
import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.parse
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("meterline.capture")

Builder = Callable[[Any], dict[str, Any]]
"""Turns one queued item into an event object; runs on the exporter thread."""

_LIVE: weakref.WeakSet[Exporter] = weakref.WeakSet()


@dataclass
class ExporterStats:
    """Counters of what the exporter did; read them for monitoring."""

    enqueued: int = 0
    sent: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0
    retries: int = 0
    batches: int = 0


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - now)


def _identity(item: Any) -> dict[str, Any]:
    result: dict[str, Any] = item
    return result


class Exporter:
    """Ships events in the background; never blocks or raises into the caller.

    Args:
        url: the Meterline server's base URL (``https://meterline.example.com``).
        key: an ingest key or a token with ``events:write``.
        builder: turns a queued item into an event object on the exporter thread.
        max_queue: items kept waiting at most; beyond it the oldest are dropped.
        batch_size: events per request; a full batch is sent at once.
        interval: seconds a partial batch may wait before it is sent.
        max_attempts: tries per batch before it is dropped and counted as failed.
        backoff: base seconds of the exponential backoff (doubled per retry).
        max_backoff: upper bound of one wait between tries.
        timeout: socket timeout of one request.

    Example:
        >>> exporter = Exporter("http://127.0.0.1:8000", "k_abc.def")
        >>> exporter.enqueue({"event_id": "e1", "path": "/orders/1", "status": 200})
        >>> exporter.flush(timeout=5)  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        builder: Builder = _identity,
        max_queue: int = 100_000,
        batch_size: int = 1_000,
        interval: float = 2.0,
        max_attempts: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        user_agent: str = "meterline-capture",
    ) -> None:
        parsed = urllib.parse.urlsplit(url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"the Meterline URL must be http(s)://host[:port], not {url!r}")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._path = (parsed.path or "") + "/v2/events"
        self._key = key
        self._builder = builder
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.interval = interval
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._user_agent = user_agent
        self.stats = ExporterStats()
        self._queue: deque[Any] = deque(maxlen=max_queue)
        self._closed = False
        self._reset_thread_state()
        _LIVE.add(self)

    def _reset_thread_state(self) -> None:
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._inflight = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopping = False

    # -- request path ---------------------------------------------------------------

    def enqueue(self, item: Any) -> None:
        """Queue one item for export; O(1), never blocks, never raises."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.stats.dropped += 1
        queue.append(item)
        self.stats.enqueued += 1
        if self._thread is None or self._pid != os.getpid():
            self._start()
        elif len(queue) >= self.batch_size:
            self._wake.set()

    # -- lifecycle ------------------------------------------------------------------

    def _start(self) -> None:
        if self._closed:
            return
        if self._pid != os.getpid():
            self._after_fork()
        thread = threading.Thread(target=self._run, name="meterline-exporter", daemon=True)
        self._thread = thread
        thread.start()

    def _after_fork(self) -> None:
        # Items queued before the fork belong to the parent, which sends them itself.
        self._queue.clear()
        self.stats = ExporterStats()
        self._reset_thread_state()

    def pending(self) -> int:
        """Items queued or being sent."""
        return len(self._queue) + self._inflight

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything queued now; True when the queue drained within ``timeout``."""
        if self._thread is None or self._pid != os.getpid():
            if not self._queue:
                return True
            self._start()
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self.pending():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(remaining, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush (bounded by ``timeout``) and stop the thread; later items are dropped."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout=1.0)

    # -- exporter thread ------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            if len(self._queue) < self.batch_size:
                self._wake.wait(self.interval)
            self._wake.clear()
            while self._queue and not self._stopping:
                batch = self._take()
                try:
                    self._send_batch(batch)
                finally:
                    with self._idle:
                        self._inflight = 0
                        self._idle.notify_all()
                if len(self._queue) < self.batch_size:
                    break

    def _take(self) -> list[dict[str, Any]]:
        items: list[Any] = []
        queue = self._queue
        with self._idle:
            while queue and len(items) < self.batch_size:
                try:
                    items.append(queue.popleft())
                except IndexError:  # pragma: no cover - raced with a drop
                    break
            self._inflight = len(items)
        events = []
        for item in items:
            try:
                events.append(self._builder(item))
            except Exception:  # a bad item must not lose its batch
                log.exception("could not build a Meterline event; dropped")
                self.stats.rejected += 1
        return events

    def _send_batch(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        body = gzip.compress(json.dumps(events, separators=(",", ":")).encode(), 5)
        for attempt in range(1, self.max_attempts + 1):
            try:
                accepted = self._post(body)
            except _Refused:
                self.stats.rejected += len(events)
                return
            except _Retryable as exc:
                if attempt == self.max_attempts or self._closed:
                    break
                self.stats.retries += 1
                wait = random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
                if exc.retry_after is not None:
                    wait = max(wait, min(exc.retry_after, self.max_backoff))
                log.debug("Meterline export failed (%s); retrying in %.2fs", exc, wait)
                time.sleep(wait)
                continue
            self.stats.batches += 1
            self.stats.sent += accepted
            self.stats.rejected += len(events) - accepted
            return
        self.stats.failed += len(events)
        log.warning("Meterline export gave up on %d events", len(events))

    def _post(self, body: bytes) -> int:
        conn_type = (
            http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_type(self._host, self._port, timeout=self.timeout)
        try:
            conn.request(
                "POST",
                self._path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "Content-Encoding": "gzip",
                    "Authorization": f"Bearer {self._key}",
                    "User-Agent": self._user_agent,
                },
            )
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(str(exc)) from None
        finally:
            conn.close()
        status = response.status
        if status == 429 or status >= 500:
            raise _Retryable(
                f"HTTP {status}", _retry_after(response.getheader("Retry-After"), time.time())
            )
        if status >= 400:
            # A client error will not improve on retry (bad key, malformed batch).
            log.warning("Meterline refused a batch: HTTP %s %s", status, payload[:300])
            raise _Refused(f"HTTP {status}")
        try:
            result = json.loads(payload)
            return int(result.get("accepted", 0)) + int(result.get("duplicates", 0))
        except (ValueError, TypeError, AttributeError):
            return 0


class _Refused(Exception):
    """The server refused the batch with a 4xx other than 429: retrying will not help."""


def _close_all() -> None:
    for exporter in list(_LIVE):
        try:
            exporter.close(timeout=5.0)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _after_fork_in_child() -> None:
    for exporter in list(_LIVE):
        if exporter._thread is not None:
            exporter._after_fork()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["Builder", "Exporter", "ExporterStats"]
