"""The event contract: wire schema, validation into store rows, route normalisation.

Public surface: :class:`EventRow` (what the store keeps), :func:`validate_event`,
:class:`RouteNormaliser`, :func:`anonymise_ip`, :class:`PriceTable`.
"""

from __future__ import annotations

from meterline.events.anonymise import anonymise_ip
from meterline.events.normalise import RouteNormaliser
from meterline.events.pricing import PriceTable
from meterline.events.schema import (
    EVENT_TYPES,
    ROW_COLUMNS,
    EventRejection,
    EventRow,
    RawEvent,
    checked_event,
    parse_timestamp,
    rejection_from_decode_error,
    validate_event,
)

__all__ = [
    "EVENT_TYPES",
    "ROW_COLUMNS",
    "EventRejection",
    "EventRow",
    "PriceTable",
    "RawEvent",
    "RouteNormaliser",
    "anonymise_ip",
    "checked_event",
    "parse_timestamp",
    "rejection_from_decode_error",
    "validate_event",
]
