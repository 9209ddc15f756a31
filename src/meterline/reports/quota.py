"""Reports per day per org, behind a small interface so a rate limiter can back it later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from meterline import errors
from meterline.reports.tables import quota_usage


class QuotaExceededError(errors.QuotaExceededError):
    """The org has generated all the reports its plan allows today."""

    def __init__(self, message: str, *, decision: QuotaDecision, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.decision = decision


@dataclass(frozen=True, slots=True)
class QuotaDecision:
    """Whether one more report is allowed, with the numbers for rate-limit headers.

    ``limit`` ``None`` means unlimited; ``reset_at`` is Unix seconds (next UTC midnight).
    """

    allowed: bool
    limit: int | None
    used: int
    reset_at: float

    @property
    def remaining(self) -> int | None:
        """Reports left today (``None`` when unlimited)."""
        return None if self.limit is None else max(0, self.limit - self.used)


class ReportQuota(Protocol):
    """Counts reports per org per UTC day against a plan's allowance.

    ``acquire`` consumes one unit atomically (across processes) when it allows; it is
    called just before a report is recorded, and never for an idempotent replay. A rate
    limiter's quota can implement it as a daily fixed window.

    Example:
        >>> decision = quota.acquire("org_1", limit=10, now=time.time())  # doctest: +SKIP
        >>> decision.allowed
        True
    """

    def acquire(self, org_id: str, limit: int | None, now: float) -> QuotaDecision:
        """Consume one of ``org_id``'s reports for today, or refuse."""
        ...


def day_bounds(now: float) -> tuple[float, float]:
    """Start and end (Unix seconds) of the UTC day containing ``now``."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


class MetadbReportQuota:
    """A per-org, per-UTC-day counter in the metadata database.

    ``acquire`` consumes one unit with a conditional ``UPDATE … SET used = used + 1 WHERE
    used < limit``, which is atomic in SQLite and PostgreSQL alike, so processes sharing
    the database never grant more than the limit between them.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def acquire(self, org_id: str, limit: int | None, now: float) -> QuotaDecision:
        """See :class:`ReportQuota`."""
        start, end = day_bounds(now)
        day = datetime.fromtimestamp(start, tz=UTC).strftime("%Y-%m-%d")
        key = (quota_usage.c.org_id == org_id) & (quota_usage.c.day == day)
        for _ in range(2):
            with self.engine.begin() as conn:
                step = update(quota_usage).where(key).values(used=quota_usage.c.used + 1)
                if limit is not None:
                    step = step.where(quota_usage.c.used < limit)
                if conn.execute(step).rowcount == 1:
                    used = conn.execute(select(quota_usage.c.used).where(key)).scalar_one()
                    return QuotaDecision(True, limit, int(used), end)
                found = conn.execute(select(quota_usage.c.used).where(key)).scalar_one_or_none()
                if found is not None:
                    return QuotaDecision(False, limit, int(found), end)
                if limit is not None and limit < 1:
                    return QuotaDecision(False, limit, 0, end)
            try:
                with self.engine.begin() as conn:
                    conn.execute(quota_usage.insert().values(org_id=org_id, day=day, used=1))
                return QuotaDecision(True, limit, 1, end)
            except IntegrityError:
                continue  # another process opened today's counter first; count on it
        return QuotaDecision(False, limit, limit or 0, end)
