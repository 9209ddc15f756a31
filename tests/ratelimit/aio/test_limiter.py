"""The asyncio twin: same decisions, exact under many tasks, bounded when Redis hangs."""

from __future__ import annotations

import asyncio
import time

import pytest

from meterline.clock import FrozenClock
from meterline.ratelimit import Algorithm, CircuitBreaker, FailurePolicy, Identity, Rule
from meterline.ratelimit.aio import MemoryStorage, RateLimiter, RedisStorage, Storage
from tests.ratelimit.aio_run import run
from tests.ratelimit.redis_server import RedisServer, SilentServer

T0 = 1_699_999_200.0
ID = Identity(org="acme", consumer="c1", ip="10.0.0.1")


def storage(kind: str, server: RedisServer) -> Storage:
    if kind == "memory":
        return MemoryStorage()
    server.flush()
    made: Storage = RedisStorage(server.url, timeout=5.0)
    return made


@pytest.mark.parametrize("kind", ["memory", "redis"])
@pytest.mark.parametrize("algorithm", [a for a in Algorithm if a is not Algorithm.CONCURRENCY])
def test_many_tasks_admit_exactly_the_limit(
    redis_server: RedisServer, kind: str, algorithm: Algorithm
) -> None:
    async def main() -> list[bool]:
        limiter = RateLimiter(
            storage(kind, redis_server),
            [Rule("hot", 40, 3600, algorithm, per=("org",)), Rule("ip", 1000, 60, per=("ip",))],
            clock=FrozenClock(T0),
        )
        try:
            decisions = await asyncio.gather(*(limiter.hit(ID) for _ in range(200)))
            assert not any(d.degraded for d in decisions)  # every one decided by storage
            ip_left = {s.rule.name: s.remaining for s in (await limiter.peek(ID)).states}["ip"]
            assert ip_left == 1000 - 40 - 1
            return [d.allowed for d in decisions]
        finally:
            await limiter.close()

    assert sum(run(main())) == 40


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_quota_and_concurrency_twins(redis_server: RedisServer, kind: str) -> None:
    async def main() -> None:
        from meterline.plans import DEFAULT_PLANS, PlanName
        from meterline.ratelimit import Plan

        limiter = RateLimiter(
            storage(kind, redis_server),
            [Rule("inflight", 1, 30, Algorithm.CONCURRENCY, per=("org",))],
            clock=FrozenClock(T0),
        )
        basic = Plan.from_limits("basic", DEFAULT_PLANS[PlanName.BASIC])
        quota = [await limiter.consume_quota("acme", "reports", basic) for _ in range(11)]
        assert [d.allowed for d in quota] == [True] * 10 + [False]
        assert quota[-1].code == "QUOTA_EXCEEDED"
        held = await limiter.hit(ID)
        assert held.allowed and not (await limiter.hit(ID)).allowed
        await limiter.release(held)
        assert (await limiter.hit(ID)).allowed
        await limiter.close()

    run(main())


@pytest.mark.parametrize("policy", list(FailurePolicy))
def test_hung_redis_is_cut_off_and_policy_applies(policy: FailurePolicy) -> None:
    silent = SilentServer()

    async def main() -> None:
        limiter = RateLimiter(
            RedisStorage(silent.url),
            [Rule("r", 5, 60, per=("org",), on_error=policy)],
            breaker=CircuitBreaker(failures=100),
        )
        for _ in range(3):
            started = time.monotonic()
            d = await limiter.hit(ID)
            assert time.monotonic() - started < 2.0  # liveness: it would hang without bounds
            assert d.degraded and d.allowed is (policy is FailurePolicy.OPEN)
        assert limiter.stats.storage_errors == 3
        await limiter.close()

    try:
        run(main())
    finally:
        silent.close()
