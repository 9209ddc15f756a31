"""One conformance suite, run against both storages (memory, Redis) under both limiters
(sync, asyncio), with an injectable clock: same inputs, same decisions."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from meterline.clock import FrozenClock
from meterline.ratelimit import (
    Algorithm,
    Identity,
    MemoryStorage,
    Period,
    RateLimiter,
    RedisStorage,
    Rule,
    aio,
)
from tests.ratelimit.conftest import Backend, LoopThread
from tests.ratelimit.redis_server import RedisServer

T0 = 1_699_999_200.0  # a multiple of every window used here (3600 s included)
ALICE = Identity(org="acme", consumer="alice", ip="203.0.113.7", endpoint="/v2/reports")


def limiter(backend: Backend, *rules: Rule, clock: FrozenClock | None = None) -> Any:
    """A sync limiter, or the asyncio one awaited call by call, on the backend's storage."""
    return backend.limiter(rules, clock or FrozenClock(T0))


def run(lim: Any, n: int, identity: Identity = ALICE) -> list[bool]:
    return [lim.hit(identity).allowed for _ in range(n)]


def test_fixed_window_counts_exactly_and_resets_at_the_boundary(backend: Backend) -> None:
    clock = FrozenClock(T0 + 10)
    lim = limiter(backend, Rule("fw", 3, 60, per=("org",)), clock=clock)
    first = [lim.hit(ALICE) for _ in range(4)]
    assert [d.allowed for d in first] == [True, True, True, False]
    assert [d.remaining for d in first] == [2, 1, 0, 0]
    assert first[0].reset_at == T0 + 60
    assert first[3].retry_after == pytest.approx(50)
    assert first[3].rule is not None and first[3].rule.name == "fw"
    clock.advance(50)
    assert lim.hit(ALICE).allowed
    assert lim.hit(Identity(org="other")).remaining == 2


def test_sliding_log_admits_as_old_entries_leave(backend: Backend) -> None:
    clock = FrozenClock(T0)
    lim = limiter(backend, Rule("log", 3, 10, Algorithm.SLIDING_LOG, per=("ip",)), clock=clock)
    assert run(lim, 2) == [True, True]
    clock.advance(4)
    assert run(lim, 2) == [True, False]
    denied = lim.hit(ALICE)
    assert denied.retry_after == pytest.approx(6)  # the first entry leaves at T0 + 10
    clock.advance(6)
    assert run(lim, 3) == [True, True, False]  # two left at T0+10 (same timestamp)


def test_sliding_log_keeps_entries_that_share_a_timestamp(backend: Backend) -> None:
    lim = limiter(backend, Rule("log", 5, 10, Algorithm.SLIDING_LOG))
    assert run(lim, 7) == [True] * 5 + [False] * 2


def test_sliding_window_weights_the_previous_window(backend: Backend) -> None:
    clock = FrozenClock(T0)
    lim = limiter(backend, Rule("sw", 10, 10, Algorithm.SLIDING_WINDOW), clock=clock)
    assert run(lim, 11) == [True] * 10 + [False]
    clock.advance(15)  # halfway into the next window: 10 * 0.5 = 5 still count
    decisions = [lim.hit(ALICE) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[0].remaining == 4
    assert decisions[5].retry_after == pytest.approx(1.0)


def test_token_bucket_refills_at_the_rate(backend: Backend) -> None:
    clock = FrozenClock(T0)
    rule = Rule("tb", 10, 10, Algorithm.TOKEN_BUCKET, burst=3)
    lim = limiter(backend, rule, clock=clock)
    assert run(lim, 4) == [True, True, True, False]
    assert lim.hit(ALICE).retry_after == pytest.approx(1.0)
    clock.advance(2.5)
    assert run(lim, 3) == [True, True, False]
    d = lim.peek(ALICE)
    assert d.remaining == 0 and d.reset_at == pytest.approx(T0 + 2.5 + 2.5)


def test_gcra_spaces_requests_after_the_burst(backend: Backend) -> None:
    clock = FrozenClock(T0)
    lim = limiter(backend, Rule("g", 3600, 3600, Algorithm.GCRA, burst=5), clock=clock)
    first = [lim.hit(ALICE) for _ in range(6)]
    assert [d.allowed for d in first] == [True] * 5 + [False]
    assert [d.remaining for d in first[:5]] == [4, 3, 2, 1, 0]
    assert first[5].retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    assert run(lim, 2) == [True, False]


def test_concurrency_limits_requests_in_flight(backend: Backend) -> None:
    clock = FrozenClock(T0)
    lim = limiter(backend, Rule("inflight", 2, 30, Algorithm.CONCURRENCY), clock=clock)
    a, b, c = (lim.hit(ALICE) for _ in range(3))
    assert (a.allowed, b.allowed, c.allowed) == (True, True, False)
    lim.release(a)
    assert lim.hit(ALICE).allowed
    clock.advance(31)  # leases never released expire
    assert run(lim, 2) == [True, True]


def test_daily_and_monthly_quotas_follow_the_calendar(backend: Backend) -> None:
    clock = FrozenClock(1_706_745_000.0)  # 2024-01-31T23:50:00Z
    day = Rule("day", 2, period=Period.DAY, per=("org",), quota=True)
    month = Rule("month", 3, period=Period.MONTH, per=("org",), quota=True)
    lim = limiter(backend, day, month, clock=clock)
    assert run(lim, 3) == [True, True, False]
    denied = lim.hit(ALICE)
    assert denied.code == "QUOTA_EXCEEDED" and denied.rule == day
    assert denied.reset_at == 1_706_745_600.0  # 2024-02-01T00:00:00Z
    clock.advance(600)  # a new day and a new month
    assert run(lim, 3) == [True, True, False]


def test_a_request_denied_by_one_tier_consumes_nothing_from_the_others(
    backend: Backend,
) -> None:
    org = Rule("org", 100, 60, per=("org",))
    consumer = Rule("consumer", 2, 60, Algorithm.SLIDING_LOG, per=("org", "consumer"))
    ip = Rule("ip", 100, 60, Algorithm.TOKEN_BUCKET, per=("ip",))
    lim = limiter(backend, org, consumer, ip)
    assert run(lim, 5) == [True, True, False, False, False]
    d = lim.peek(ALICE)
    left = {s.rule.name: s.remaining for s in d.states}
    # peek answers what a hit would: two consumed, a third would leave 97
    assert left == {"org": 97, "consumer": 0, "ip": 97}
    assert d.rule == consumer


def test_endpoint_and_method_rules_apply_only_where_they_match(backend: Backend) -> None:
    rule = Rule("reports", 1, 60, per=("org",), match="/v2/reports*", methods=frozenset({"POST"}))
    lim = limiter(backend, rule)
    post = Identity(org="acme", endpoint="/v2/reports/r1", method="POST")
    get = Identity(org="acme", endpoint="/v2/reports/r1", method="GET")
    assert run(lim, 2, post) == [True, False]
    assert run(lim, 2, get) == [True, True]
    assert lim.hit(get).rule is None


def test_cost_above_one_and_limit_zero(backend: Backend) -> None:
    lim = limiter(backend, Rule("units", 10, 60))
    assert lim.hit(ALICE, cost=7).remaining == 3
    assert not lim.hit(ALICE, cost=4).allowed
    assert lim.hit(ALICE, cost=3).allowed
    closed = limiter(backend, Rule("none", 0, 60, Algorithm.GCRA))
    assert not closed.hit(ALICE).allowed


# --- differential: random traffic, identical decisions in memory, Redis, Redis via asyncio ---

ALGORITHMS = [a for a in Algorithm if a is not Algorithm.CONCURRENCY]
events = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.floats(0, 3, allow_nan=False), st.integers(1, 3)),
    min_size=1,
    max_size=40,
)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    algorithm=st.sampled_from(ALGORITHMS),
    limit=st.integers(1, 8),
    window=st.sampled_from([1.0, 2.5, 10.0]),
    burst=st.one_of(st.none(), st.integers(1, 8)),
    traffic=events,
)
def test_every_storage_and_limiter_decides_identically(
    redis_server: RedisServer,
    algorithm: Algorithm,
    limit: int,
    window: float,
    burst: int | None,
    traffic: list[tuple[str, float, int]],
) -> None:
    redis_server.flush()
    rule = Rule("r", limit, window, algorithm, per=("consumer",), burst=burst)
    clock = FrozenClock(T0 + 0.25)
    redis = RedisStorage(redis_server.url, timeout=5.0)
    mem = RateLimiter(MemoryStorage(), [rule], clock=clock)
    red = RateLimiter(redis, [rule], clock=clock)
    loop = LoopThread()
    # the asyncio limiter on the same server, under its own hash tag (its own counters)
    awaited = aio.RateLimiter(
        aio.RedisStorage(redis_server.url, timeout=5.0),
        [rule],
        clock=clock,
        hash_tag=lambda identity: "asyncio",
    )
    try:
        for who, step, cost in traffic:
            clock.advance(step)
            identity = Identity(consumer=who)
            m, r = mem.hit(identity, cost=cost), red.hit(identity, cost=cost)
            a = loop.run(awaited.hit(identity, cost=cost))
            for other in (r, a):
                assert (m.allowed, m.remaining) == (other.allowed, other.remaining)
                assert m.reset_at == pytest.approx(other.reset_at, abs=1e-6)
                assert m.retry_after == pytest.approx(other.retry_after, abs=1e-6)
    finally:
        redis.close()
        loop.run(awaited.close())
        loop.stop()


# --- property: no window of length W admits more than limit + burst (a fixed window:
# its limit per calendar window, twice that across a boundary) ---


@settings(max_examples=60, deadline=None)
@given(
    algorithm=st.sampled_from(ALGORITHMS),
    limit=st.integers(1, 20),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 0.5, allow_nan=False), min_size=10, max_size=300),
)
# Two at the end of one fixed window, two at the start of the next.
@example(algorithm=Algorithm.FIXED_WINDOW, limit=2, burst=1, gaps=[0.5] * 10 + [0.0])
def test_no_window_admits_more_than_limit_plus_burst(
    algorithm: Algorithm, limit: int, burst: int, gaps: list[float]
) -> None:
    window = 5.0
    clock = FrozenClock(T0 + 0.1)
    rule = Rule("r", limit, window, algorithm, burst=burst)
    lim = RateLimiter(MemoryStorage(), [rule], clock=clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        if lim.hit(ALICE).allowed:
            admitted.append(clock())
    if algorithm is Algorithm.FIXED_WINDOW:
        # Each calendar window admits at most the limit; a span straddling a boundary
        # may see the end of one and the start of the next (the algorithm's known edge),
        # so twice the limit at most.
        per_window = Counter(int((t - T0) // window) for t in admitted)
        assert max(per_window.values(), default=0) <= limit
        bound = 2 * limit
    else:
        bound = limit + burst
    for i, start in enumerate(admitted):
        inside = sum(1 for t in admitted[i:] if t < start + window)
        assert inside <= bound
