"""Ingest: decode request bodies, validate and deduplicate events, acknowledge durably.

Public surface: :class:`IngestService` (what routes call), :class:`IngestWriter` (the
write-ahead log and flusher behind it), :class:`IngestResult`, :func:`decode_body`.
"""

from __future__ import annotations

from meterline.ingest.decode import DecodedBody, decode_body
from meterline.ingest.dedup import RecentKeys
from meterline.ingest.prepare import BatchContext, PreparedBatch, PreparePool, prepare_body
from meterline.ingest.service import IngestResult, IngestService
from meterline.ingest.wal import Position, WriteAheadLog
from meterline.ingest.writer import BackpressureError, IngestWriter

__all__ = [
    "BackpressureError",
    "BatchContext",
    "DecodedBody",
    "IngestResult",
    "IngestService",
    "IngestWriter",
    "Position",
    "PreparePool",
    "PreparedBatch",
    "RecentKeys",
    "WriteAheadLog",
    "decode_body",
    "prepare_body",
]
