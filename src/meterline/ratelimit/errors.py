"""The error a caller raises when a decision refuses: 429 with the rate-limit headers."""

from __future__ import annotations

from meterline.errors import RateLimitExceededError
from meterline.ratelimit.decision import Decision, decision_headers


class RateLimitedError(RateLimitExceededError):
    """A refused decision as an error: ``RATE_LIMIT_EXCEEDED`` or ``QUOTA_EXCEEDED`` (429),
    ``RATE_LIMITER_UNAVAILABLE`` (503); :attr:`headers` holds the rate-limit headers."""

    def __init__(self, decision: Decision, now: float) -> None:
        rule = decision.rule
        name = rule.name if rule is not None else "limit"
        super().__init__(
            f"the '{name}' limit is used up"
            if decision.code != "RATE_LIMITER_UNAVAILABLE"
            else "the rate limiter is unavailable",
            details=f"Retry after {max(1, round(decision.retry_after))} s.",
            code=decision.code,
            status=503 if decision.code == "RATE_LIMITER_UNAVAILABLE" else 429,
        )
        self.decision = decision
        self.headers = dict(decision_headers(decision, now))


def ensure_allowed(decision: Decision, now: float) -> Decision:
    """Return ``decision`` if it allows, else raise :class:`RateLimitedError`."""
    if not decision.allowed:
        raise RateLimitedError(decision, now)
    return decision
