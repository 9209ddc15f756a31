"""Multi-tier rate limiting, exact under concurrency, in memory or Redis.

A library for any Python app and the limiter on Meterline's own API: rules keyed per
org, consumer, IP or endpoint, checked and consumed atomically (a request denied by one
tier consumes nothing from the others), plans with overrides, signed exemptions, an
adaptive factor and a failure policy per rule. ``meterline.ratelimit.aio`` mirrors this
API for asyncio; ``meterline.ratelimit.middleware`` is the ASGI middleware.
"""

from __future__ import annotations

from meterline.ratelimit.adaptive import AdaptiveFactor
from meterline.ratelimit.breaker import CircuitBreaker
from meterline.ratelimit.decision import Decision, RuleState, decision_headers
from meterline.ratelimit.exemptions import Exemption, ExemptionSigner
from meterline.ratelimit.limiter import RateLimiter
from meterline.ratelimit.plans import Plan, PlanBook
from meterline.ratelimit.rules import Algorithm, FailurePolicy, Identity, Period, Rule
from meterline.ratelimit.storage import MemoryStorage, Storage, StorageError, storage_from_url


def __getattr__(name: str) -> object:
    # RedisStorage imports redis-py, which the base install does not require.
    if name == "RedisStorage":
        from meterline.ratelimit.storage.redis import RedisStorage

        return RedisStorage
    if name == "RedisClusterStorage":
        from meterline.ratelimit.storage.redis import RedisClusterStorage

        return RedisClusterStorage
    if name == "RateLimitMiddleware":
        from meterline.ratelimit.middleware import RateLimitMiddleware

        return RateLimitMiddleware
    raise AttributeError(name)


__all__ = [
    "AdaptiveFactor",
    "Algorithm",
    "CircuitBreaker",
    "Decision",
    "Exemption",
    "ExemptionSigner",
    "FailurePolicy",
    "Identity",
    "MemoryStorage",
    "Period",
    "Plan",
    "PlanBook",
    "RateLimitMiddleware",
    "RateLimiter",
    "RedisClusterStorage",
    "RedisStorage",
    "Rule",
    "RuleState",
    "Storage",
    "StorageError",
    "decision_headers",
    "storage_from_url",
]
