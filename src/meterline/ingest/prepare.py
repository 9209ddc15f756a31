"""Turning one request body into store-ready rows: the CPU-heavy half of ingest.

:func:`prepare_body` decodes, validates, normalises and encodes a batch (as Arrow). It touches no
shared state, so the server runs it in worker processes (:class:`PreparePool`) and keeps
only deduplication and the durable write on the event loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from meterline.events import PriceTable, RouteNormaliser
from meterline.events.arrow import batch_to_ipc
from meterline.events.columnar import validate_batch
from meterline.ingest.decode import decode_body

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PreparedBatch:
    """A body's valid events as one Arrow IPC stream of store rows (``payload``), their
    ids in the same order, and what was rejected."""

    event_ids: list[str] = field(default_factory=list)
    payload: bytes = b""
    rejected: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What a batch needs to know about its request."""

    org_id: str
    retention_days: int
    now_ms: int
    record_id: str
    max_bytes: int
    max_events: int


def prepare_body(
    body: bytes,
    content_type: str,
    content_encoding: str,
    context: BatchContext,
    normaliser: RouteNormaliser,
    prices: PriceTable,
) -> PreparedBatch:
    """Decode and validate a body; raises only when the body as a whole is unreadable."""
    items = decode_body(
        body,
        content_type=content_type,
        content_encoding=content_encoding,
        max_bytes=context.max_bytes,
        max_events=context.max_events,
    ).items
    return prepare_items(items, context, normaliser, prices)


def prepare_items(
    items: list[Any],
    context: BatchContext,
    normaliser: RouteNormaliser,
    prices: PriceTable,
    *,
    history: bool = False,
) -> PreparedBatch:
    """Validate decoded items and encode the valid ones as store rows (``history``
    accepts timestamps of any age)."""
    checked = validate_batch(
        items,
        org_id=context.org_id,
        now_ms=context.now_ms,
        retention_days=context.retention_days,
        record_id=context.record_id,
        normaliser=normaliser,
        prices=prices,
        history=history,
    )
    return PreparedBatch(
        event_ids=checked.event_ids,
        payload=batch_to_ipc(checked.batch) if checked.event_ids else b"",
        rejected=[
            {"index": index, "code": rejection.code, "message": rejection.message}
            for index, rejection in sorted(checked.rejected, key=lambda r: r[0])
        ],
    )


_worker: dict[str, Any] = {}

_WARM_UP_EVENT = {
    "event_id": "prepare-pool-warm-up",
    "method": "GET",
    "route": "/warm-up",
    "status": 200,
    "latency_ms": 1.0,
    "consumer_id": "warm-up",
}


def warm_up(normaliser: RouteNormaliser, prices: PriceTable) -> PreparedBatch:
    """Prepare one throw-away event, so the modules and code paths that load on first
    use (about a third of a second here) are loaded before a real request needs them."""
    now_ms = int(time.time() * 1000)
    body = json.dumps([{**_WARM_UP_EVENT, "timestamp": now_ms}]).encode()
    context = BatchContext(
        org_id="warm-up",
        retention_days=1,
        now_ms=now_ms,
        record_id="warm-up",
        max_bytes=1 << 20,
        max_events=1,
    )
    return prepare_body(body, "application/json", "", context, normaliser, prices)


def _exit_with_parent() -> None:
    """End this worker when the process that started it ends, however it ends: a server
    killed outright never shuts its pool down, and its workers would wait forever."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(
    rules: tuple[tuple[str, str], ...],
    prices: dict[str, tuple[float, float]],
    ready: Any,
) -> None:
    _exit_with_parent()
    _worker["normaliser"] = RouteNormaliser(rules)
    _worker["prices"] = PriceTable(prices)
    try:
        warm_up(_worker["normaliser"], _worker["prices"])
    except Exception:
        # Only the first request gets slower; the worker itself is fine.
        log.exception("ingest worker warm-up failed")
    finally:
        ready.release()


def _prepare_in_worker(
    body: bytes, content_type: str, content_encoding: str, context: BatchContext
) -> PreparedBatch:
    return prepare_body(
        body, content_type, content_encoding, context, _worker["normaliser"], _worker["prices"]
    )


def _started() -> None:
    """A task that only makes the pool start a worker for it."""


PIPE_BYTES = 1 << 20
"""Capacity asked for the pipes between the server and its ingest workers."""


def _widen_pipes(executor: ProcessPoolExecutor) -> None:
    """Give the executor's two pipes room for a whole batch each way (a 1,000-event body
    and its prepared rows are ~250 KB each; a pipe holds 64 KB by default). A worker
    otherwise blocks mid-write until the server's result thread, which needs the event
    loop's interpreter lock, has drained the pipe, and sits idle while it waits.

    The pipes are the executor's private attributes: where they are not found, or the
    system refuses the size, the pool works as before, only slower.
    """
    for name in ("_call_queue", "_result_queue"):
        reader = getattr(getattr(executor, name, None), "_reader", None)
        try:
            fcntl.fcntl(reader.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):
            log.debug("could not widen the ingest worker pipe %s", name)


class PreparePool:
    """Worker processes that prepare batches in parallel with the event loop.

    Workers are spawned (not forked: the server process holds the store's threads), each
    with its own copy of the route rules and price table. They are all started at once
    and warm themselves up (imports, one throw-away batch) before taking work, so no
    request waits for a worker to start: a cold start cost the first ingest request
    after a restart most of a second. :meth:`wait_ready` waits for that.
    """

    def __init__(self, workers: int, normaliser: RouteNormaliser, prices: PriceTable) -> None:
        context = multiprocessing.get_context("spawn")
        self.workers = workers
        self._ready = context.Semaphore(0)
        self._warm = 0
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(normaliser.rules, prices.prices, self._ready),
        )
        _widen_pipes(self._executor)
        # The executor starts a worker for each task submitted while none is idle, so
        # as many tasks as workers start every worker now rather than on demand.
        for _ in range(workers):
            self._executor.submit(_started)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Block until every worker has started and warmed up (at most ``timeout``
        seconds); returns whether they all did."""
        deadline = time.monotonic() + timeout
        while self._warm < self.workers:
            if not self._ready.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
            self._warm += 1
        return True

    async def prepare(
        self, body: bytes, content_type: str, content_encoding: str, context: BatchContext
    ) -> PreparedBatch:
        """Prepare one body in a worker process."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, _prepare_in_worker, body, content_type, content_encoding, context
        )

    def close(self) -> None:
        """Stop the workers."""
        self._executor.shutdown(wait=True, cancel_futures=True)
