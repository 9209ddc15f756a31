"""Reports per day per org: the plan's ``reports`` quota of the rate limiter.

The count lives where the API's rate limits live (memory, or Redis shared by every
server process), as a fixed window over the UTC day, so plan overrides made through
``/v2/admin/ratelimits`` (``reports_per_day``) apply to reports too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from meterline import errors
from meterline.ratelimit import RateLimiter
from meterline.ratelimit.plans import REPORTS_QUOTA


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
    """Counts reports per org per UTC day against its plan's allowance.

    ``acquire`` consumes one unit atomically (across processes sharing the storage) when
    it allows; it is called just before a report is recorded, and never for an idempotent
    replay.

    Example:
        >>> decision = quota.acquire("org_1", "basic")  # doctest: +SKIP
        >>> decision.allowed, decision.limit
        (True, 10)
    """

    def acquire(self, org_id: str, plan: str) -> QuotaDecision:
        """Consume one of ``org_id``'s reports for today, or refuse."""
        ...


def day_bounds(now: float) -> tuple[float, float]:
    """Start and end (Unix seconds) of the UTC day containing ``now``."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


class LimiterReportQuota:
    """:class:`ReportQuota` on a rate limiter's per-day ``reports`` quota.

    ``limiter`` must know the plans (its plan book, with any overrides); a plan without a
    ``reports`` quota (enterprise) is unlimited. When the limiter's storage is down, the
    quota rule's failure policy decides (open by default: reports are not refused because
    Redis is).
    """

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    def acquire(self, org_id: str, plan: str) -> QuotaDecision:
        """See :class:`ReportQuota`."""
        decision = self.limiter.consume_quota(org_id, REPORTS_QUOTA, plan)
        if decision.rule is None:  # no quota on this plan
            return QuotaDecision(True, None, 0, day_bounds(self.limiter.clock())[1])
        used = decision.limit - decision.remaining
        return QuotaDecision(decision.allowed, decision.limit, used, decision.reset_at)
