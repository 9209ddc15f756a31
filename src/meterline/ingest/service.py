"""Ingest as a service: body → events → validated rows → dedup → durable write."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from meterline.clock import Clock, system_clock
from meterline.events import PriceTable, RouteNormaliser
from meterline.events.arrow import batch_to_ipc, ipc_to_batch
from meterline.ingest.prepare import (
    BatchContext,
    PreparedBatch,
    PreparePool,
    prepare_body,
    prepare_items,
)
from meterline.ingest.writer import IngestWriter
from meterline.telemetry import Telemetry


@dataclass(slots=True)
class IngestResult:
    """What happened to a request's events: the ``POST /v2/events`` response body."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The response body."""
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


class IngestService:
    """Validates and deduplicates a batch, then waits until the accepted events are durable.

    With a :class:`PreparePool`, decoding and validation run in worker processes; the
    event loop keeps only deduplication (which must see every request in order) and the
    durable write.

    Example:
        >>> result = await service.ingest("org_1", 30, body, "application/json", "")
        >>> result.accepted  # doctest: +SKIP
        1000
    """

    def __init__(
        self,
        writer: IngestWriter,
        *,
        normaliser: RouteNormaliser | None = None,
        prices: PriceTable | None = None,
        clock: Clock = system_clock,
        max_bytes: int = 10 * 1024 * 1024,
        max_events: int = 10_000,
        telemetry: Telemetry | None = None,
        pool: PreparePool | None = None,
    ) -> None:
        self.writer = writer
        self.normaliser = normaliser or RouteNormaliser()
        self.prices = prices or PriceTable()
        self.clock = clock
        self.max_bytes = max_bytes
        self.max_events = max_events
        self.telemetry = telemetry or writer.telemetry
        self.pool = pool

    def _context(self, org_id: str, retention_days: int) -> BatchContext:
        return BatchContext(
            org_id=org_id,
            retention_days=retention_days,
            now_ms=int(self.clock() * 1000),
            record_id=self.writer.new_record_id(),
            max_bytes=self.max_bytes,
            max_events=self.max_events,
        )

    async def ingest(
        self,
        org_id: str,
        retention_days: int,
        body: bytes,
        content_type: str,
        content_encoding: str,
    ) -> IngestResult:
        """Ingest one request body for ``org_id``; raises only for an unreadable body.

        The time from the read body to its acknowledgement is observed in the ingest
        request histogram (requests that fail as a whole are not)."""
        started = time.perf_counter()
        context = self._context(org_id, retention_days)
        if self.pool is not None:
            batch = await self.pool.prepare(body, content_type, content_encoding, context)
        else:
            batch = prepare_body(
                body, content_type, content_encoding, context, self.normaliser, self.prices
            )
        result = await self._commit(org_id, batch)
        self.telemetry.ingest_requests.observe(time.perf_counter() - started)
        return result

    async def ingest_events(
        self, org_id: str, retention_days: int, items: list[Any], *, history: bool = False
    ) -> IngestResult:
        """Validate, deduplicate and durably write already-decoded events (``RawEvent``s
        or ``EventRejection``s, in request order); ``history`` accepts timestamps of any
        age (imports of old access logs)."""
        context = self._context(org_id, retention_days)
        batch = prepare_items(items, context, self.normaliser, self.prices, history=history)
        return await self._commit(org_id, batch)

    async def _commit(self, org_id: str, batch: PreparedBatch) -> IngestResult:
        result = IngestResult(rejected=batch.rejected)
        recent = self.writer.recent
        # Reserve synchronously (no await in between), so two concurrent requests
        # carrying the same event_id cannot both count it.
        keep = recent.reserve_many(org_id, batch.event_ids)
        accepted = sum(keep)
        result.duplicates = len(keep) - accepted
        payload = batch.payload
        if result.duplicates and accepted:
            rows = ipc_to_batch(payload).filter(pa.array(keep))
            payload = batch_to_ipc(rows)
        try:
            if accepted:
                await self.writer.write_payload(payload, accepted)
        except BaseException:
            recent.release(
                recent.key(org_id, event_id)
                for event_id, kept in zip(batch.event_ids, keep, strict=True)
                if kept
            )
            raise
        result.accepted = accepted
        counter = self.telemetry.ingest_events
        counter.labels("accepted").inc(result.accepted)
        counter.labels("duplicate").inc(result.duplicates)
        counter.labels("rejected").inc(len(result.rejected))
        return result
