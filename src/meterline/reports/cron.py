"""Cron expressions in an IANA time zone, evaluated on local wall-clock time.

A schedule fires at each local time its five fields match, once: a wall time that occurs
twice on the autumn change fires at its first occurrence only, and one that does not
exist on the spring change fires when the clocks jump past it. Days match as cron does
(day-of-month OR day-of-week when both are restricted); day-of-week 0 and 7 are Sunday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterline.errors import ValidationError

_NAMES = {
    "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day_of_month", 1, 31), ("month", 1, 12),
           ("day_of_week", 0, 7))  # fmt: skip
_SEARCH_DAYS = 5 * 366


def _invalid(message: str) -> ValidationError:
    return ValidationError(
        f"invalid schedule: {message}",
        details="Use five cron fields 'minute hour day-of-month month day-of-week', "
        "e.g. '0 9 * * 1' for Mondays at 09:00.",
        validation_errors=[{"field": "cron", "message": message}],
    )


def _value(text: str, name: str) -> int:
    lowered = text.lower()
    if lowered in _NAMES and name in ("month", "day_of_week"):
        return _NAMES[lowered]
    if not text.isdigit():
        raise _invalid(f"{name}: {text!r} is not a number")
    return int(text)


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = _value(step_text, name) if step_text else 1
        if step < 1:
            raise _invalid(f"{name}: step must be at least 1")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, name), _value(last, name)
        else:
            start = _value(body, name)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise _invalid(f"{name}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    if name == "day_of_week" and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression bound to a time zone.

    Example:
        >>> s = CronSchedule.parse("0 9 * * 1", "Europe/Berlin")
        >>> s.next_after(datetime(2026, 10, 20, tzinfo=UTC)).isoformat()
        '2026-10-26T08:00:00+00:00'
    """

    expression: str
    timezone: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str, timezone: str) -> CronSchedule:
        """Parse five cron fields and an IANA zone name; ``VALIDATION_ERROR`` when invalid."""
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                f"unknown time zone {timezone!r}",
                details="Use an IANA zone name such as Europe/Berlin or America/New_York.",
                validation_errors=[{"field": "timezone", "message": "unknown IANA time zone"}],
            ) from None
        parts = expression.split()
        if len(parts) != 5:
            raise _invalid("expected 5 fields")
        parsed = [
            _parse_field(part, name, low, high)
            for part, (name, low, high) in zip(parts, _FIELDS, strict=True)
        ]
        minutes, hours, days, months, weekdays = parsed
        schedule = cls(
            expression,
            timezone,
            minutes,
            hours,
            days,
            months,
            weekdays,
            parts[2] != "*",
            parts[4] != "*",
        )
        if schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise _invalid("it never fires")
        return schedule

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment`` (aware), in UTC; ``None`` if none
        within five years."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        day = local.date() - timedelta(days=1)  # a gap-shifted time may land a day later
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        fire = _resolve(datetime.combine(day, time(hour, minute)), zone)
                        if fire > moment:
                            return fire
            day += timedelta(days=1)
        return None

    def due_times(self, start: datetime, end: datetime) -> list[datetime]:
        """Every firing in ``(start, end]``, in order (UTC)."""
        found: list[datetime] = []
        moment = start
        while True:
            fire = self.next_after(moment)
            if fire is None or fire > end:
                return found
            found.append(fire)
            moment = fire


def _resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """A local wall time as a UTC instant: the first of two on the autumn change; on the
    spring change a skipped time moves forward by the gap."""
    # fold=0 picks the first of two autumn instants; for a skipped spring time it uses
    # the offset before the jump, which is the moment the clocks jump past it.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def cron_for(frequency: str, at: str, day_of_week: int | None, day_of_month: int | None) -> str:
    """The cron expression of a ``daily``/``weekly``/``monthly`` schedule at ``HH:MM``."""
    try:
        hour_text, minute_text = at.split(":")
        hour, minute = int(hour_text), int(minute_text)
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise ValueError
    except ValueError:
        raise ValidationError(
            f"'time' must be HH:MM, got {at!r}",
            validation_errors=[{"field": "time", "message": "must be HH:MM (24-hour)"}],
        ) from None
    if frequency == "daily":
        return f"{minute} {hour} * * *"
    if frequency == "weekly":
        weekday = 1 if day_of_week is None else day_of_week
        if not 0 <= weekday <= 7:
            raise ValidationError(
                "'day_of_week' must be 0-7 (0 and 7 are Sunday)",
                validation_errors=[{"field": "day_of_week", "message": "must be 0-7"}],
            )
        return f"{minute} {hour} * * {weekday}"
    if frequency == "monthly":
        day = 1 if day_of_month is None else day_of_month
        if not 1 <= day <= 28:
            raise ValidationError(
                "'day_of_month' must be 1-28 so that every month has it",
                validation_errors=[{"field": "day_of_month", "message": "must be 1-28"}],
            )
        return f"{minute} {hour} {day} * *"
    raise ValidationError(
        f"unknown frequency {frequency!r}",
        validation_errors=[{"field": "frequency", "message": "daily, weekly or monthly"}],
    )
