"""Turning one request body into store-ready rows: the CPU-heavy half of ingest.

:func:`prepare_body` decodes, validates, normalises and encodes a batch (as Arrow). It touches no
shared state, so the server runs it in worker processes (:class:`PreparePool`) and keeps
only deduplication and the durable write on the event loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from meterline.events import PriceTable, RouteNormaliser
from meterline.events.arrow import batch_to_ipc
from meterline.events.columnar import validate_batch
from meterline.ingest.decode import decode_body


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


def _init_worker(
    rules: tuple[tuple[str, str], ...], prices: dict[str, tuple[float, float]]
) -> None:
    _worker["normaliser"] = RouteNormaliser(rules)
    _worker["prices"] = PriceTable(prices)


def _prepare_in_worker(
    body: bytes, content_type: str, content_encoding: str, context: BatchContext
) -> PreparedBatch:
    return prepare_body(
        body, content_type, content_encoding, context, _worker["normaliser"], _worker["prices"]
    )


class PreparePool:
    """Worker processes that prepare batches in parallel with the event loop.

    Workers are spawned (not forked: the server process holds the store's threads), each
    with its own copy of the route rules and price table.
    """

    def __init__(self, workers: int, normaliser: RouteNormaliser, prices: PriceTable) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(normaliser.rules, prices.prices),
        )

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
