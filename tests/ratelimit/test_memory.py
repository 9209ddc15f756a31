"""The memory storage's hot paths: counters linked to cached checks never outlive a
clear() or an expiry, and in-place logs keep exact counts."""

from __future__ import annotations

from meterline.clock import FrozenClock
from meterline.ratelimit import Algorithm, Identity, MemoryStorage, RateLimiter, Rule
from meterline.ratelimit.core import make_check

T0 = 1_699_999_200.0
WHO = Identity(org="acme")


def test_clear_forgets_counters_that_the_hot_path_had_linked() -> None:
    storage = MemoryStorage()
    limiter = RateLimiter(storage, [Rule("fw", 3, 60, per=("org",))], clock=FrozenClock(T0 + 1))
    assert limiter.hit(WHO).remaining == 2
    storage.clear()
    assert [limiter.hit(WHO).remaining for _ in range(3)] == [2, 1, 0]
    assert not limiter.hit(WHO).allowed
    assert len(storage) == 1


def test_a_counter_swept_while_another_thread_lags_is_not_counted_into() -> None:
    # one thread's clock may read a little behind another's: the sweep run by the later
    # one must not leave the earlier one counting into a counter nobody else sees
    storage = MemoryStorage()
    rule = Rule("fw", 5, 10)
    check = make_check(rule, "k", T0 + 9, 1)
    assert storage.apply(T0 + 9, [check], "", True)[1][0].remaining == 4
    storage.apply(T0 + 11, [make_check(rule, "other", T0 + 11, 1)], "", True)  # sweeps "k"
    assert storage.apply(T0 + 9.5, [check], "", True)[1][0].remaining == 4
    assert (
        storage.apply(T0 + 9.5, [make_check(rule, "k", T0 + 9.5, 1)], "", True)[1][0].remaining == 3
    )
    storage.apply(T0 + 12, [make_check(rule, "other", T0 + 12, 1)], "", True)
    assert len(storage) == 1  # the late counter was swept too; "other" is left


def test_expired_counters_are_swept_and_the_next_window_starts_afresh() -> None:
    clock = FrozenClock(T0 + 1)
    storage = MemoryStorage()
    limiter = RateLimiter(storage, [Rule("fw", 2, 10, per=("org",))], clock=clock)
    assert [limiter.hit(WHO).remaining for _ in range(2)] == [1, 0]
    clock.advance(10)  # next window: the old counter is swept on the next call
    fresh = limiter.hit(WHO)
    assert fresh.allowed and fresh.remaining == 1 and fresh.reset_at == T0 + 20
    assert len(storage) == 1
    # two limiters on one storage share the counter, whichever linked it first
    other = RateLimiter(storage, [Rule("fw", 2, 10, per=("org",))], clock=clock)
    assert other.hit(WHO).remaining == 0
    assert not limiter.hit(WHO).allowed


def test_a_sliding_log_updated_in_place_counts_exactly() -> None:
    clock = FrozenClock(T0)
    limiter = RateLimiter(
        MemoryStorage(), [Rule("log", 3, 10, Algorithm.SLIDING_LOG, per=("org",))], clock=clock
    )
    assert [limiter.hit(WHO).allowed for _ in range(4)] == [True, True, True, False]
    clock.advance(10)  # all three leave the window together
    assert [limiter.hit(WHO).remaining for _ in range(3)] == [2, 1, 0]
    assert limiter.hit(WHO, cost=2).allowed is False
    clock.advance(10)
    assert limiter.hit(WHO, cost=2).remaining == 1


def test_a_cleared_log_starts_afresh_and_a_moving_log_is_filed_once() -> None:
    clock = FrozenClock(T0)
    storage = MemoryStorage()
    rule = Rule("log", 100, 3600, Algorithm.SLIDING_LOG, per=("org",))
    limiter = RateLimiter(storage, [rule], clock=clock)
    assert [limiter.hit(WHO).remaining for _ in range(2)] == [99, 98]
    storage.clear()
    assert limiter.hit(WHO).remaining == 99
    for _ in range(30):  # each hit moves the log's expiry to a later second
        clock.advance(1)
        limiter.hit(WHO)
    assert limiter.peek(WHO).remaining == 100 - 31 - 1
    # one expiry bucket holds the key, not one per second it was hit in
    assert sum(len(keys) for keys in storage._buckets.values()) == 1
