"""The commercial plans and what each one grants (seed ``reporting-analytics-api-v2`` §1, §6).

Plans are data, read by retention (store TTL), rate limiting and report quotas; the
numbers here are the defaults, which deployments may override.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PlanName(StrEnum):
    """The plan an org is on."""

    BASIC = "basic"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """What a plan grants: data retention, request rate, report quota and live streams.

    ``reports_per_day`` of ``None`` means unlimited. ``stream_connections`` is per org
    and node, ``stream_subscriptions`` per connection, ``stream_message_bytes`` the
    largest client message on ``/v2/stream``.
    """

    retention_days: int
    requests_per_hour: int
    burst: int
    reports_per_day: int | None
    stream_connections: int = 20
    stream_subscriptions: int = 10
    stream_message_bytes: int = 16 * 1024


DEFAULT_PLANS: dict[PlanName, PlanLimits] = {
    PlanName.BASIC: PlanLimits(
        retention_days=30, requests_per_hour=1_000, burst=50, reports_per_day=10
    ),
    PlanName.PROFESSIONAL: PlanLimits(
        retention_days=365,
        requests_per_hour=10_000,
        burst=200,
        reports_per_day=100,
        stream_connections=100,
        stream_subscriptions=20,
        stream_message_bytes=64 * 1024,
    ),
    PlanName.ENTERPRISE: PlanLimits(
        retention_days=5 * 365,
        requests_per_hour=100_000,
        burst=1_000,
        reports_per_day=None,
        stream_connections=500,
        stream_subscriptions=20,
        stream_message_bytes=64 * 1024,
    ),
}


def plan_limits(plan: str) -> PlanLimits:
    """Return the limits of ``plan``; raises ``ValueError`` for an unknown plan name."""
    return DEFAULT_PLANS[PlanName(plan)]
