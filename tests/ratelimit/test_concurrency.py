"""Exactness under concurrency: many processes and threads on one key."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from meterline.ratelimit import Algorithm, Identity, MemoryStorage, RateLimiter, RedisStorage, Rule
from tests.ratelimit.redis_server import RedisServer

T0 = 1_699_999_200.0
LIMIT = 50
ALGORITHMS = [a for a in Algorithm if a is not Algorithm.CONCURRENCY]


def frozen() -> float:
    return T0 + 1.0


def rules(algorithm: str) -> list[Rule]:
    """One contended rule plus two roomy tiers that must count exactly the admitted hits."""
    return [
        Rule("hot", LIMIT, 3600, Algorithm(algorithm), per=("org",)),
        Rule("consumer", 10_000, 3600, Algorithm.SLIDING_LOG, per=("org", "consumer")),
        Rule("ip", 10_000, 3600, Algorithm.TOKEN_BUCKET, per=("ip",)),
    ]


def worker(url: str, threads: int, attempts: int, out: multiprocessing.Queue[list[int]]) -> None:
    """One process: ``threads`` threads each try ``attempts`` hits per algorithm."""
    counts = []
    for algorithm in ALGORITHMS:
        limiter = RateLimiter(RedisStorage(url, timeout=5.0), rules(algorithm.value), clock=frozen)
        identity = Identity(org=f"acme-{algorithm}", consumer="c1", ip=f"ip-{algorithm}")

        def run(_: int, limiter: RateLimiter = limiter, identity: Identity = identity) -> int:
            return sum(limiter.hit(identity).allowed for _ in range(attempts))

        with ThreadPoolExecutor(threads) as pool:
            counts.append(sum(pool.map(run, range(threads))))
    out.put(counts)


@pytest.mark.slow
def test_eight_processes_of_four_threads_admit_exactly_the_limit_over_redis(
    redis_server: RedisServer,
) -> None:
    redis_server.flush()
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[int]] = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(redis_server.url, 4, 5, out)) for _ in range(8)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    admitted = [sum(column) for column in zip(*results, strict=True)]
    # 160 attempts per algorithm: exactly the limit admitted, never more
    assert admitted == [LIMIT] * len(ALGORITHMS)
    for algorithm in ALGORITHMS:
        check = RateLimiter(
            RedisStorage(redis_server.url, timeout=5.0), rules(algorithm.value), clock=frozen
        )
        identity = Identity(org=f"acme-{algorithm}", consumer="c1", ip=f"ip-{algorithm}")
        left = {s.rule.name: s.remaining for s in check.peek(identity).states}
        # the other tiers were charged for the admitted requests only
        assert left["consumer"] == left["ip"] == 10_000 - LIMIT - 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_thirty_two_threads_admit_exactly_the_limit_in_memory(algorithm: Algorithm) -> None:
    limiter = RateLimiter(MemoryStorage(), rules(algorithm.value), clock=frozen)
    identity = Identity(org="acme", consumer="c1", ip="10.0.0.1")
    barrier = threading.Barrier(32)

    def run(_: int) -> int:
        barrier.wait()
        return sum(limiter.hit(identity).allowed for _ in range(10))

    with ThreadPoolExecutor(32) as pool:
        assert sum(pool.map(run, range(32))) == LIMIT


def test_concurrency_limiter_holds_at_most_limit_in_flight(redis_server: RedisServer) -> None:
    redis_server.flush()
    limiter = RateLimiter(
        RedisStorage(redis_server.url, timeout=5.0),
        [Rule("inflight", 3, 60, Algorithm.CONCURRENCY, per=("org",))],
    )
    identity = Identity(org="acme")
    lock = threading.Lock()
    in_flight = peak = served = 0

    def request(_: int) -> None:
        nonlocal in_flight, peak, served
        decision = limiter.hit(identity)
        if not decision.allowed:
            return
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            served += 1
        threading.Event().wait(0.01)
        with lock:
            in_flight -= 1
        limiter.release(decision)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(request, range(200)))
    assert served >= 3 and peak <= 3
