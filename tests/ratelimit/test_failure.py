"""Failure policy: Redis down, hung or stopped mid-run never hangs a decision."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from meterline.clock import FrozenClock
from meterline.ratelimit import (
    CircuitBreaker,
    Decision,
    FailurePolicy,
    Identity,
    RateLimiter,
    RedisClusterStorage,
    RedisStorage,
    Rule,
    aio,
)
from tests.helpers import free_port
from tests.ratelimit.aio_run import run
from tests.ratelimit.redis_server import RedisServer, SilentServer

ID = Identity(org="acme", ip="10.0.0.1")
OPEN = Rule("open", 5, 60, per=("org",))
CLOSED = Rule("closed", 5, 60, per=("ip",), on_error=FailurePolicy.CLOSED)
# A generous liveness bound: a client without socket timeouts would block forever, while
# a bounded one answers within 2 x 50 ms plus scheduling noise on a busy machine.
LIVENESS = 2.0


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def timed(limiter: RateLimiter) -> tuple[float, bool, bool, str]:
    started = time.monotonic()
    d = limiter.hit(ID)
    return time.monotonic() - started, d.allowed, d.degraded, d.code


@pytest.mark.parametrize("rule", [OPEN, CLOSED], ids=["fail-open", "fail-closed"])
def test_redis_that_never_answers_is_cut_off_by_the_timeout(
    silent: SilentServer, rule: Rule
) -> None:
    limiter = RateLimiter(RedisStorage(silent.url), [rule], breaker=CircuitBreaker(failures=100))
    for _ in range(3):
        elapsed, allowed, degraded, code = timed(limiter)
        assert elapsed < LIVENESS
        assert degraded and allowed is (rule.on_error is FailurePolicy.OPEN)
    assert limiter.stats.storage_errors == 3
    if rule is CLOSED:
        assert code == "RATE_LIMITER_UNAVAILABLE"


def test_closed_rule_wins_when_rules_disagree(silent: SilentServer) -> None:
    limiter = RateLimiter(RedisStorage(silent.url), [OPEN, CLOSED])
    d = limiter.hit(ID)
    assert not d.allowed and d.degraded and d.rule == CLOSED
    assert d.retry_after == limiter.breaker.cooldown


def test_redis_down_opens_the_breaker_and_skips_storage() -> None:
    breaker_clock = FrozenClock(0.0)
    limiter = RateLimiter(
        RedisStorage(f"redis://127.0.0.1:{free_port()}/0"),
        [OPEN],
        breaker=CircuitBreaker(failures=3, cooldown=5.0, clock=breaker_clock),
    )
    for _ in range(10):
        elapsed, allowed, degraded, _ = timed(limiter)
        assert elapsed < LIVENESS and allowed and degraded
    assert limiter.stats.storage_errors == 3  # the breaker opened after three
    assert limiter.breaker.state == "open"
    breaker_clock.advance(5.0)
    limiter.hit(ID)
    assert limiter.stats.storage_errors == 4  # one probe, which failed: open again
    assert limiter.breaker.state == "open"


@pytest.mark.slow
def test_redis_stopped_mid_run_then_service_resumes() -> None:
    server = RedisServer()
    server.start()
    breaker_clock = FrozenClock(0.0)
    limiter = RateLimiter(
        RedisStorage(server.url, timeout=0.5),
        [OPEN, Rule("ip-closed", 100, 60, per=("ip",), on_error=FailurePolicy.CLOSED)],
        breaker=CircuitBreaker(failures=2, cooldown=3.0, clock=breaker_clock),
    )
    try:
        assert [limiter.hit(ID).allowed for _ in range(3)] == [True] * 3
        server.stop()
        for _ in range(5):
            elapsed, allowed, degraded, code = timed(limiter)
            assert elapsed < LIVENESS
            assert not allowed and degraded and code == "RATE_LIMITER_UNAVAILABLE"
        server.start()  # same port, empty: counters start again
        breaker_clock.advance(3.0)
        decisions = [limiter.hit(ID) for _ in range(6)]
        assert [d.degraded for d in decisions] == [False] * 6
        assert [d.allowed for d in decisions] == [True] * 5 + [False]
        assert decisions[-1].code == "RATE_LIMIT_EXCEEDED"
        assert limiter.breaker.state == "closed"
    finally:
        server.stop()


@pytest.mark.parametrize("flavour", ["sync", "asyncio"])
def test_a_cluster_node_that_never_answers_is_cut_off_by_the_timeout(
    silent: SilentServer, flavour: str
) -> None:
    url = f"redis+cluster://127.0.0.1:{silent.port}"
    breaker = CircuitBreaker(failures=100)
    if flavour == "sync":
        storage = RedisClusterStorage(url, timeout=0.1)
        limiter = RateLimiter(storage, [CLOSED], breaker=breaker)
        started = time.monotonic()
        decision = limiter.hit(ID)
    else:

        async def awaited() -> Decision:
            lim = aio.RateLimiter(
                aio.RedisClusterStorage(url, timeout=0.1), [CLOSED], breaker=breaker
            )
            try:
                return await lim.hit(ID)
            finally:
                await lim.close()

        started = time.monotonic()
        decision = run(awaited())
    assert time.monotonic() - started < LIVENESS
    assert decision.degraded and not decision.allowed
    assert decision.code == "RATE_LIMITER_UNAVAILABLE"
