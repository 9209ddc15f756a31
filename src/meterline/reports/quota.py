"""Reports per day per org, behind a small interface so a rate limiter can back it later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, func, select

from meterline.errors import MeterlineError
from meterline.reports.tables import reports


class QuotaExceededError(MeterlineError):
    """The org has generated all the reports its plan allows today."""

    code = "QUOTA_EXCEEDED"
    status = 429

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

    ``acquire`` is called, under the caller's lock, just before a report is recorded; an
    implementation backed by a rate limiter would consume one unit there.

    Example:
        >>> decision = quota.acquire("org_1", limit=10, now=time.time())  # doctest: +SKIP
        >>> decision.allowed
        True
    """

    def acquire(self, org_id: str, limit: int | None, now: float) -> QuotaDecision:
        """Decide whether ``org_id`` may start one more report now."""
        ...


def day_bounds(now: float) -> tuple[float, float]:
    """Start and end (Unix seconds) of the UTC day containing ``now``."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


class MetadbReportQuota:
    """Counts today's on-demand reports in the metadata database (scheduled runs, which
    the org set up once, do not use the allowance)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def acquire(self, org_id: str, limit: int | None, now: float) -> QuotaDecision:
        """See :class:`ReportQuota`; the report row recorded afterwards is the consumption."""
        start, end = day_bounds(now)
        with self.engine.connect() as conn:
            used = conn.execute(
                select(func.count())
                .select_from(reports)
                .where(
                    reports.c.org_id == org_id,
                    reports.c.source == "api",
                    reports.c.created_at >= start,
                    reports.c.created_at < end,
                )
            ).scalar_one()
        return QuotaDecision(limit is None or used < limit, limit, int(used), end)
