"""Time ranges: relative (``24h``) or absolute (ISO 8601 ``start``/``end``), always UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from meterline.errors import DateFormatError, ValidationError

_RELATIVE = re.compile(r"^(\d{1,5})(m|h|d|w)$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_RANGE = timedelta(days=5 * 366)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        """Length of the range in seconds."""
        return (self.end - self.start).total_seconds()


def parse_instant(value: str, field: str) -> datetime:
    """Parse an ISO 8601 date or date-time (naive means UTC) or raise ``DATE_FORMAT_INVALID``."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DateFormatError(
            f"'{field}' is not a valid ISO 8601 date",
            details=f"Got {value!r}; use e.g. 2026-11-23T10:00:00Z or 2026-11-23.",
            validation_errors=[{"field": field, "message": "must be ISO 8601"}],
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def resolve_range(
    *, range_: str | None, start: str | None, end: str | None, now: datetime, default: str = "24h"
) -> TimeRange:
    """Turn the request's ``range`` or ``start``/``end`` into a :class:`TimeRange`.

    A relative range ends at ``now`` rounded up to the minute (so it includes every event
    up to now, and lines up with the minute rollups: nothing has to be read from raw
    events); ``end`` alone defaults to that too, and ``start`` alone to 24 hours before
    ``end``.
    """
    floor = now.replace(second=0, microsecond=0)
    now = floor if floor == now else floor + timedelta(minutes=1)
    if start is not None or end is not None:
        if range_ is not None:
            raise ValidationError(
                "give either 'range' or 'start'/'end', not both",
                validation_errors=[{"field": "range", "message": "conflicts with start/end"}],
            )
        end_at = parse_instant(end, "end") if end is not None else now
        start_at = (
            parse_instant(start, "start") if start is not None else end_at - timedelta(days=1)
        )
    else:
        text = range_ if range_ is not None else default
        match = _RELATIVE.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise ValidationError(
                f"'range' must look like 15m, 1h, 24h, 7d or 30d; got {text!r}",
                validation_errors=[{"field": "range", "message": "use <number><m|h|d|w>"}],
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        end_at = now
        start_at = now - timedelta(seconds=seconds)
    if start_at >= end_at:
        raise ValidationError(
            "'start' must be before 'end'",
            validation_errors=[{"field": "start", "message": "must be before end"}],
        )
    if end_at - start_at > MAX_RANGE:
        raise ValidationError(
            "the time range is longer than five years, the longest any plan keeps",
            validation_errors=[{"field": "range", "message": "at most 5 years"}],
        )
    return TimeRange(start_at, end_at)
