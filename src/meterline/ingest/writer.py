"""The ingest writer: durable acknowledgement, then large batched inserts into the store.

``write(rows)`` returns once the rows are fsynced in the write-ahead log — concurrent
requests share one fsync (group commit). A flusher thread moves acknowledged rows into
the store in large batches (large inserts are several times faster in ClickHouse than
one insert per request), then advances the log's checkpoint. On start-up the log after
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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from meterline.errors import MeterlineError
from meterline.events import ROW_COLUMNS, EventRow
from meterline.ingest.dedup import RecentKeys
from meterline.ingest.wal import Position, WriteAheadLog
from meterline.store import Store, encode_rows
from meterline.telemetry import Telemetry

log = logging.getLogger(__name__)

_BATCH = ROW_COLUMNS.index("ingest_batch")
_RECEIVED = ROW_COLUMNS.index("received_at")
_ORG = ROW_COLUMNS.index("org_id")
_EVENT_ID = ROW_COLUMNS.index("event_id")
_decode_row = msgspec.json.Decoder(list[object]).decode

Listener = Callable[[Sequence[EventRow]], None]


class BackpressureError(MeterlineError):
    """Too many acknowledged rows are waiting for the store; the client should retry."""

    code = "SERVICE_OVERLOADED"
    status = 503


@dataclass(slots=True)
class _Pending:
    """Acknowledged rows not yet in the store: encoded payloads, in log order."""

    payloads: list[bytes] = field(default_factory=list)
    rows: int = 0
    end: Position | None = None

    def take(self, other: _Pending) -> None:
        self.payloads.extend(other.payloads)
        self.rows += other.rows
        if other.end is not None:
            self.end = other.end


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
        flush_rows: int = 50_000,
        flush_interval: float = 1.0,
        fsync: bool = True,
        dedup_capacity: int = 2_000_000,
        max_pending_rows: int = 2_000_000,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.store = store
        self.wal = WriteAheadLog(wal_dir, fsync=fsync)
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval
        self.max_pending_rows = max_pending_rows
        self.recent = RecentKeys(dedup_capacity)
        self.telemetry = telemetry or Telemetry()
        self.listeners: list[Listener] = []
        self._commits: queue.Queue[tuple[bytes, int, Future[None]] | None] = queue.Queue()
        # Record ids tag every row of one request, so a replay can tell which records
        # the store already holds; the boot prefix keeps them unique across restarts.
        self._boot = secrets.token_hex(4)
        self._sequence = itertools.count(1)
        self._pending = _Pending()
        self._cond = threading.Condition()
        self._stopping = False
        self._inflight = 0
        self._threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Replay the log into the store, load dedup memory, start the threads."""
        self._recover()
        if self._pending.payloads or self._pending.end is not None:
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
        records: list[tuple[str, Position, bytes, list[list[object]]]] = []
        for _start, end, payload in self.wal.replay(checkpoint):
            rows = [_decode_row(line) for line in payload.split(b"\n") if line]
            if rows:
                records.append((str(rows[0][_BATCH]), end, payload, rows))
        if records:
            present = self.store.inserted_batches(r[0] for r in records)
            for record_id, end, payload, rows in records:
                if record_id not in present:
                    self._pending.payloads.append(payload)
                    self._pending.rows += len(rows)
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
        self.recent.load((str(r[_ORG]), str(r[_EVENT_ID])) for *_, rows in records for r in rows)
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
        await self._write(encode_rows(rows), len(rows), rows)

    async def write_encoded(self, lines: list[bytes]) -> None:
        """Like :meth:`write` for rows already encoded by ``store.encode_rows`` (one line
        each, their record id set)."""
        if lines:
            await self._write(b"\n".join(lines), len(lines), None)

    async def _write(self, payload: bytes, count: int, rows: list[EventRow] | None) -> None:
        if self._pending.rows > self.max_pending_rows:
            raise BackpressureError(
                "the store is behind and the ingest buffer is full",
                details="Retry after a few seconds.",
            )
        future: Future[None] = Future()
        self._commits.put((payload, count, future))
        await asyncio.wrap_future(future)
        if not self.listeners:
            return
        if rows is None:
            rows = [list(_decode_row(line)) for line in payload.split(b"\n")]
        for listener in self.listeners:
            try:
                listener(rows)
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

    def _commit(self, batch: list[tuple[bytes, int, Future[None]]]) -> None:
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
        with self._cond:
            for payload, count, _ in batch:
                self._pending.payloads.append(payload)
                self._pending.rows += count
            self._pending.end = spans[-1][1]
            if self._pending.rows >= self.flush_rows:
                self._cond.notify_all()
        self.telemetry.pending_rows.set(self._pending.rows)
        for _, _, future in batch:
            future.set_result(None)

    def _flush_loop(self) -> None:
        backoff = 0.5
        while True:
            with self._cond:
                deadline = time.monotonic() + self.flush_interval
                while (
                    not self._stopping
                    and self._pending.rows < self.flush_rows
                    and time.monotonic() < deadline
                ):
                    self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
                stopping = self._stopping
                taken, self._pending = self._pending, _Pending()
                self._inflight = taken.rows
            if taken.payloads:
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
                    if not self._pending.payloads:
                        return

    def _flush(self, pending: _Pending) -> bool:
        if not pending.payloads:
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
        while pending.payloads:
            chunk = pending.payloads[:400]
            try:
                self.store.insert_encoded(b"\n".join(chunk))
            except Exception:
                if not self.store.ping():
                    log.exception("store unavailable; %d rows wait in the log", pending.rows)
                    self.telemetry.store_insert_failures.inc()
                    return False
                # The store answers but refuses this chunk: find the records it refuses
                # so one bad record cannot hold back every event after it.
                self._insert_one_by_one(chunk)
            # Drop what is stored, so a retry after a later failure cannot repeat it.
            del pending.payloads[: len(chunk)]
            inserted += sum(p.count(b"\n") + 1 for p in chunk)
        self.telemetry.store_insert.observe(time.perf_counter() - started)
        self.telemetry.store_insert_rows.inc(inserted)
        if pending.end is not None:
            self.wal.checkpoint(pending.end)
        with self._cond:
            self.telemetry.pending_rows.set(self._pending.rows)
        return True

    def _insert_one_by_one(self, payloads: list[bytes]) -> None:
        quarantine = self.wal.directory / "quarantine"
        for payload in payloads:
            try:
                self.store.insert_encoded(payload)
            except Exception:
                quarantine.mkdir(exist_ok=True)
                path = quarantine / f"{time.time_ns()}.ndjson"
                path.write_bytes(payload)
                self.telemetry.store_insert_failures.inc()
                log.exception("the store refused one ingest record; kept in %s", path)

    def flush_now(self, timeout: float = 30.0) -> None:
        """Block until every row acknowledged so far is in the store (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
        while time.monotonic() < deadline:
            with self._cond:
                if not self._pending.payloads and not self._inflight and self._commits.empty():
                    break
                self._cond.notify_all()
            time.sleep(0.01)

    @property
    def pending_rows(self) -> int:
        """Acknowledged rows not yet in the store (buffered or being inserted)."""
        return self._pending.rows + self._inflight
