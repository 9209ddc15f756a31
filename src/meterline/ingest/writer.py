"""The ingest writer: durable acknowledgement, then large batched inserts into the store.

``write(rows)`` returns once the rows are fsynced in the write-ahead log — concurrent
requests share one fsync (group commit). A flusher thread moves acknowledged rows into
the store in large batches (large inserts are several times faster in ClickHouse than
one insert per request), then advances the log's checkpoint. How long rows wait adapts
to the store's load (see :class:`FlushDelay`). On start-up the log after
the checkpoint is replayed; records the store already holds (a crash between insert and
checkpoint) are recognised by their record id and skipped, so nothing counts twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pyarrow as pa

from meterline.config import Settings
from meterline.errors import MeterlineError
from meterline.events import ROW_COLUMNS, EventRow
from meterline.events.arrow import batch_to_ipc, ipc_to_batch, is_ipc, rows_to_ipc
from meterline.ingest.dedup import RecentKeys
from meterline.ingest.wal import Position, WriteAheadLog
from meterline.store import Store
from meterline.telemetry import Telemetry

log = logging.getLogger(__name__)

_BATCH = ROW_COLUMNS.index("ingest_batch")
_decode_row = msgspec.json.Decoder(list[object]).decode

_INSERT_ROWS = 200_000
"""Rows per store insert at most: large enough to amortise the per-insert cost of the
rollup views, small enough to keep one insert's memory bounded."""

Listener = Callable[[pa.RecordBatch], None]
"""Told of every durably written batch of rows (Arrow, ``EVENT_SCHEMA``)."""


def _logged_batch(payload: bytes) -> pa.RecordBatch:
    """The rows of one log record: an Arrow IPC stream, or JSON lines in older logs."""
    if is_ipc(payload):
        return ipc_to_batch(payload)
    rows = [_decode_row(line) for line in payload.split(b"\n") if line]
    return ipc_to_batch(rows_to_ipc(rows))


class BackpressureError(MeterlineError):
    """Too many acknowledged rows are waiting for the store; the client should retry."""

    code = "SERVICE_OVERLOADED"
    status = 503


@dataclass(slots=True)
class _Pending:
    """Acknowledged rows not yet in the store: Arrow record batches, in log order."""

    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    end: Position | None = None

    def take(self, other: _Pending) -> None:
        self.batches.extend(other.batches)
        self.rows += other.rows
        if other.end is not None:
            self.end = other.end


class FlushDelay:
    """How long acknowledged rows wait before the next store insert.

    An insert costs a large fixed amount (parts written to the events table and every
    rollup, and merged later) plus a little per row, so when the store is busy, fewer and
    larger inserts carry more events with the same CPU: measured on a 2-core machine
    under sustained ingest, 200,000-row inserts every few seconds cost the server process
    about a fifth less CPU per event than 50,000-row inserts every second. The delay
    therefore follows the last insert's duration — twice it, so the store is busy at most
    about half the time — between ``minimum`` (the delay when the store keeps up easily)
    and ``maximum`` (how far the store may fall behind under load; live numbers come from
    the live windows, not the store). A ``minimum`` above ``maximum`` wins: it is a
    deliberate setting.
    """

    __slots__ = ("maximum", "minimum", "seconds")

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self.seconds = minimum

    def after_insert(self, elapsed: float) -> float:
        """Set and return the delay after an insert that took ``elapsed`` seconds."""
        self.seconds = min(max(2.0 * elapsed, self.minimum), self.maximum)
        return self.seconds


class IngestWriter:
    """Owns the write-ahead log, the dedup memory and the flusher thread.

    Example:
        >>> writer = IngestWriter(store, Path(".meterline/wal"))  # doctest: +SKIP
        >>> writer.start()  # doctest: +SKIP
        >>> await writer.write(rows)  # durable when this returns  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        wal_dir: Path,
        *,
        flush_rows: int = 200_000,
        flush_interval: float = 1.0,
        flush_max_delay: float = 5.0,
        fsync: bool = True,
        dedup_capacity: int = 2_000_000,
        max_pending_rows: int = 2_000_000,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.store = store
        self.wal = WriteAheadLog(wal_dir, fsync=fsync)
        self.flush_rows = flush_rows
        self.delay = FlushDelay(flush_interval, flush_max_delay)
        self.max_pending_rows = max_pending_rows
        self.recent = RecentKeys(dedup_capacity)
        self.telemetry = telemetry or Telemetry()
        self.listeners: list[Listener] = []
        self._commits: queue.Queue[tuple[bytes, int, Future[pa.RecordBatch | None]] | None] = (
            queue.Queue()
        )
        # Record ids tag every row of one request, so a replay can tell which records
        # the store already holds; the boot prefix keeps them unique across restarts.
        self._boot = secrets.token_hex(4)
        self._sequence = itertools.count(1)
        self._pending = _Pending()
        self._cond = threading.Condition()
        self._stopping = False
        self._flush_requested = False
        self._inflight = 0
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_settings(
        cls, store: Store, settings: Settings, telemetry: Telemetry | None = None
    ) -> IngestWriter:
        """A writer with the log in ``<data dir>/wal`` and the flush and dedup settings."""
        return cls(
            store,
            settings.data_dir / "wal",
            flush_rows=settings.flush_rows,
            flush_interval=settings.flush_interval,
            flush_max_delay=settings.flush_max_delay,
            fsync=settings.fsync,
            dedup_capacity=settings.dedup_capacity,
            telemetry=telemetry,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Replay the log into the store, load dedup memory, start the threads."""
        self._recover()
        if self._pending.batches or self._pending.end is not None:
            # Recovered rows go to the store before the server reports ready, so what
            # was acknowledged before a crash is queryable as soon as it is back.
            recovered, self._pending = self._pending, _Pending()
            if not self._flush(recovered):
                self._pending = recovered
        for target, name in (
            (self._commit_loop, "wal-writer"),
            (self._flush_loop, "store-flusher"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop accepting, flush everything acknowledged into the store, close the log."""
        self._commits.put(None)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)
        self.wal.close()

    def _recover(self) -> None:
        checkpoint = self.wal.read_checkpoint()
        records: list[tuple[str, Position, pa.RecordBatch]] = []
        for _start, end, payload in self.wal.replay(checkpoint):
            try:
                batch = _logged_batch(payload)
            except Exception:
                self._quarantine(payload)
                continue
            if batch.num_rows:
                records.append((str(batch.column("ingest_batch")[0]), end, batch))
        if records:
            present = self.store.inserted_batches(r[0] for r in records)
            for record_id, end, batch in records:
                if record_id not in present:
                    self._pending.batches.append(batch)
                    self._pending.rows += batch.num_rows
                self._pending.end = end
            log.info(
                "replayed %d log records (%d already stored), %d rows pending",
                len(records),
                len(present),
                self._pending.rows,
            )
        since = int(time.time() * 1000) - 2 * 86_400_000
        stored = self.store.recent_event_keys(since, self.recent.capacity)
        self.recent.load(reversed(stored))
        for *_, batch in records:
            orgs = batch.column("org_id").to_pylist()
            self.recent.load(zip(orgs, batch.column("event_id").to_pylist(), strict=True))
        self.telemetry.pending_rows.set(self._pending.rows)

    # -- the request side ------------------------------------------------------------------

    def new_record_id(self) -> str:
        """A fresh id for one request's rows (their ``ingest_batch``)."""
        return f"{self._boot}-{next(self._sequence)}"

    async def write(self, rows: list[EventRow]) -> None:
        """Make ``rows`` durable; returns when they are fsynced, then tells the listeners."""
        if not rows:
            return
        record_id = self.new_record_id()
        for row in rows:
            row[_BATCH] = record_id
        await self.write_payload(rows_to_ipc(rows), len(rows))

    async def write_payload(self, payload: bytes, count: int) -> None:
        """Like :meth:`write` for ``count`` rows already in one Arrow IPC stream (as
        ``events.arrow.rows_to_ipc`` writes them, their record id set)."""
        if not count:
            return
        if self._pending.rows > self.max_pending_rows:
            raise BackpressureError(
                "the store is behind and the ingest buffer is full",
                details="Retry after a few seconds.",
            )
        future: Future[pa.RecordBatch | None] = Future()
        self._commits.put((payload, count, future))
        # The log writer decodes the payload for the store anyway, and hands it back.
        batch = await asyncio.wrap_future(future)
        if batch is None:
            return  # quarantined: not Arrow
        for listener in self.listeners:
            try:
                listener(batch)
            except Exception:
                log.exception("ingest listener failed")

    # -- threads ---------------------------------------------------------------------------

    def _commit_loop(self) -> None:
        while True:
            item = self._commits.get()
            batch = [item]
            while True:
                try:
                    batch.append(self._commits.get_nowait())
                except queue.Empty:
                    break
            live = [b for b in batch if b is not None]
            if live:
                self._commit(live)
            if len(live) != len(batch):
                return

    def _commit(self, batch: list[tuple[bytes, int, Future[pa.RecordBatch | None]]]) -> None:
        started = time.perf_counter()
        try:
            spans = self.wal.append_many([payload for payload, _, _ in batch])
        except Exception as exc:
            log.exception("write-ahead log append failed")
            for _, _, future in batch:
                future.set_exception(
                    MeterlineError(
                        "events could not be made durable", status=503, code="SERVICE_UNAVAILABLE"
                    )
                )
            del exc
            return
        self.telemetry.wal_commit.observe(time.perf_counter() - started)
        decoded: list[pa.RecordBatch | None] = []
        for payload, _, _ in batch:
            try:
                decoded.append(ipc_to_batch(payload))
            except Exception:
                self._quarantine(payload)
                decoded.append(None)
        with self._cond:
            for rows in decoded:
                if rows is not None:
                    self._pending.batches.append(rows)
                    self._pending.rows += rows.num_rows
            self._pending.end = spans[-1][1]
            if self._pending.rows >= self.flush_rows:
                self._cond.notify_all()
        self.telemetry.pending_rows.set(self._pending.rows)
        for (_, _, future), rows in zip(batch, decoded, strict=True):
            future.set_result(rows)

    def _flush_loop(self) -> None:
        backoff = 0.5
        while True:
            with self._cond:
                deadline = time.monotonic() + self.delay.seconds
                while (
                    not self._stopping
                    and not self._flush_requested
                    and self._pending.rows < self.flush_rows
                    and time.monotonic() < deadline
                ):
                    self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
                stopping = self._stopping
                self._flush_requested = False
                taken, self._pending = self._pending, _Pending()
                self._inflight = taken.rows
            if taken.batches:
                if not self._flush(taken):
                    with self._cond:
                        taken.take(self._pending)
                        self._pending = taken
                    if stopping:
                        log.error(
                            "store unavailable at shutdown; %d rows stay in the log", taken.rows
                        )
                        return
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 0.5
            elif taken.end is not None:
                self.wal.checkpoint(taken.end)
            if stopping:
                with self._cond:
                    if not self._pending.batches:
                        return

    def _flush(self, pending: _Pending) -> bool:
        if not pending.batches:
            if pending.end is not None:
                self.wal.checkpoint(pending.end)
            return True
        try:
            return self._insert(pending)
        finally:
            with self._cond:
                self._inflight = 0

    def _insert(self, pending: _Pending) -> bool:
        started = time.perf_counter()
        inserted = 0
        # Large inserts are far cheaper per row; cap them so one stays bounded.
        while pending.batches:
            size = rows = 0
            while size < len(pending.batches) and rows < _INSERT_ROWS:
                rows += pending.batches[size].num_rows
                size += 1
            chunk = pending.batches[:size]
            try:
                self.store.insert_batches(chunk)
            except Exception:
                if not self.store.ping():
                    log.exception("store unavailable; %d rows wait in the log", pending.rows)
                    self.telemetry.store_insert_failures.inc()
                    return False
                # The store answers but refuses this chunk: find the records it refuses
                # so one bad record cannot hold back every event after it.
                self._insert_one_by_one(chunk)
            # Drop what is stored, so a retry after a later failure cannot repeat it.
            del pending.batches[:size]
            inserted += rows
        elapsed = time.perf_counter() - started
        self.telemetry.store_insert.observe(elapsed)
        self.telemetry.flush_delay.set(self.delay.after_insert(elapsed))
        self.telemetry.store_insert_rows.inc(inserted)
        if pending.end is not None:
            self.wal.checkpoint(pending.end)
        with self._cond:
            self.telemetry.pending_rows.set(self._pending.rows)
        return True

    def _insert_one_by_one(self, batches: list[pa.RecordBatch]) -> None:
        for batch in batches:
            try:
                self.store.insert_batches([batch])
            except Exception:
                log.exception("the store refused one ingest record")
                self._quarantine(batch_to_ipc(batch))

    def _quarantine(self, payload: bytes) -> None:
        """Keep a log record the store cannot take in ``quarantine/`` for inspection."""
        quarantine = self.wal.directory / "quarantine"
        quarantine.mkdir(exist_ok=True)
        path = quarantine / f"{time.time_ns()}.arrow"
        path.write_bytes(payload)
        self.telemetry.store_insert_failures.inc()
        log.error("an ingest record could not be stored; kept in %s", path)

    def flush_now(self, timeout: float = 30.0) -> None:
        """Block until every row acknowledged so far is in the store (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._pending.batches and not self._inflight and self._commits.empty():
                    break
                self._flush_requested = True
                self._cond.notify_all()
            time.sleep(0.01)

    @property
    def pending_rows(self) -> int:
        """Acknowledged rows not yet in the store (buffered or being inserted)."""
        return self._pending.rows + self._inflight
