"""Ingest as a service: body → events → validated rows → dedup → durable write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meterline.clock import Clock, system_clock
from meterline.events import EventRejection, PriceTable, RouteNormaliser, validate_event
from meterline.ingest.decode import decode_body
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
    ) -> None:
        self.writer = writer
        self.normaliser = normaliser or RouteNormaliser()
        self.prices = prices or PriceTable()
        self.clock = clock
        self.max_bytes = max_bytes
        self.max_events = max_events
        self.telemetry = telemetry or writer.telemetry

    async def ingest(
        self,
        org_id: str,
        retention_days: int,
        body: bytes,
        content_type: str,
        content_encoding: str,
    ) -> IngestResult:
        """Ingest one request body for ``org_id``; raises only for an unreadable body."""
        decoded = decode_body(
            body,
            content_type=content_type,
            content_encoding=content_encoding,
            max_bytes=self.max_bytes,
            max_events=self.max_events,
        )
        return await self.ingest_events(org_id, retention_days, decoded.items)

    async def ingest_events(
        self, org_id: str, retention_days: int, items: list[Any], *, history: bool = False
    ) -> IngestResult:
        """Validate, deduplicate and durably write already-decoded events.

        ``history`` accepts timestamps of any age (imports of old access logs).
        """
        result = IngestResult()
        now_ms = int(self.clock() * 1000)
        rows = []
        reserved = []
        recent = self.writer.recent
        for index, item in enumerate(items):
            checked = (
                item
                if isinstance(item, EventRejection)
                else validate_event(
                    item,
                    org_id=org_id,
                    now_ms=now_ms,
                    retention_days=retention_days,
                    normaliser=self.normaliser,
                    prices=self.prices,
                    history=history,
                )
            )
            if isinstance(checked, EventRejection):
                result.rejected.append(
                    {"index": index, "code": checked.code, "message": checked.message}
                )
                continue
            # Reserve synchronously (no await in between), so two concurrent requests
            # carrying the same event_id cannot both count it.
            if not recent.reserve(org_id, checked[1]):
                result.duplicates += 1
                continue
            reserved.append(recent.key(org_id, checked[1]))
            rows.append(checked)
        try:
            await self.writer.write(rows)
        except BaseException:
            recent.release(reserved)
            raise
        result.accepted = len(rows)
        counter = self.telemetry.ingest_events
        counter.labels("accepted").inc(result.accepted)
        counter.labels("duplicate").inc(result.duplicates)
        counter.labels("rejected").inc(len(result.rejected))
        return result
