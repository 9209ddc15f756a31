"""Rate-limit decisions per second and latency, memory and Redis, against baselines.

Run: ``.venv/bin/python bench/ratelimit.py [--seconds 1.0]``. Starts its own redis-server
on a free port. Every figure is single-threaded on one hot key unless stated. Baselines,
measured in the same run and interleaved with ours: the ``limits`` library's matching
strategy on the same storage, and a bare redis-py ``INCR`` round trip. Each line gives
the throughput ratio (wall clock) and the ratio of CPU time per call of this thread; on
a busy machine the second is the steadier one (for Redis it leaves out the server's work).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

import limits
import limits.storage
import limits.strategies
import redis
import redis.connection

from meterline.ratelimit import Algorithm, Identity, MemoryStorage, RateLimiter, RedisStorage, Rule

Result = tuple[float, float, float, float]  # decisions/s, p50 µs, p99 µs, CPU µs per call


def measure(*fns: Callable[[int], object], seconds: float, warm: int = 200) -> list[Result]:
    """Run the ``fns`` interleaved in chunks for about ``seconds`` each, so load changes on
    a shared machine hit them alike; throughput and per-call latency percentiles of each,
    and the CPU time this thread spent per call (``thread_time``: what other processes on
    a busy machine take does not count, though a Redis server's work does not either).
    ``warm`` calls of each come first, unmeasured (so every key exists)."""
    for fn in fns:
        for i in range(warm):
            fn(i)
    clock = time.perf_counter_ns
    cpu = time.thread_time_ns
    samples: list[list[int]] = [[] for _ in fns]
    spent = [0] * len(fns)
    used = [0] * len(fns)
    budget = int(seconds * 1e9) * len(fns)
    i = 0
    while sum(spent) < budget:
        for k, fn in enumerate(fns):
            chunk = samples[k]
            begun, begun_cpu = clock(), cpu()
            for _ in range(100):
                t = clock()
                fn(i)
                chunk.append(clock() - t)
                i += 1
            spent[k] += clock() - begun
            used[k] += cpu() - begun_cpu
    results = []
    for k in range(len(fns)):
        q = statistics.quantiles(samples[k], n=100)
        n = len(samples[k])
        results.append((n / (spent[k] / 1e9), q[49] / 1000, q[98] / 1000, used[k] / n / 1000))
    return results


def start_redis() -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tempfile.mkdtemp(),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, port


def row(name: str, ours: Result, base: Result | None, base_name: str = "") -> None:
    """One line: our figures, then the ratio of throughput (wall clock) and of CPU per
    call against ``base``."""
    ratio = ""
    if base:
        ratio = (
            f"{ours[0] / base[0]:5.2f}x (CPU {base[3] / ours[3]:4.2f}x)"
            f"  vs {base_name} {base[0]:>9,.0f}/s"
        )
    print(
        f"  {name:<28}{ours[0]:>10,.0f}/s  p50 {ours[1]:7.1f} µs  p99 {ours[2]:7.1f} µs"
        f"  CPU {ours[3]:6.1f} µs  {ratio}"
    )


PAIRS: list[tuple[Algorithm, type[limits.strategies.RateLimiter] | None]] = [
    (Algorithm.FIXED_WINDOW, limits.strategies.FixedWindowRateLimiter),
    (Algorithm.SLIDING_LOG, limits.strategies.MovingWindowRateLimiter),
    (Algorithm.SLIDING_WINDOW, limits.strategies.SlidingWindowCounterRateLimiter),
    (Algorithm.TOKEN_BUCKET, None),
    (Algorithm.GCRA, None),
]
LIMIT = 10**9  # never refuse: measure the decision path, not the refusal path


def ours(storage: object, algorithm: Algorithm, keys: int) -> Callable[[int], object]:
    rule = Rule("r", LIMIT, 3600, algorithm, per=("consumer",))
    limiter = RateLimiter(storage, [rule])  # type: ignore[arg-type]
    ids = [Identity(consumer=f"c{k}") for k in range(keys)]
    return lambda i: limiter.hit(ids[i % keys])


def theirs(
    uri: str, cls: type[limits.strategies.RateLimiter], keys: int
) -> Callable[[int], object]:
    strategy = cls(limits.storage.storage_from_string(uri))
    item = limits.RateLimitItemPerHour(LIMIT)
    names = [f"{cls.__name__}:{keys}:c{k}" for k in range(keys)]
    return lambda i: strategy.hit(item, names[i % keys])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per case")
    seconds = parser.parse_args().seconds
    proc, port = start_redis()
    url = f"redis://127.0.0.1:{port}/0"
    try:
        print("memory storage (one hot key)")
        for algorithm, cls in PAIRS:
            if cls is None:
                row(
                    algorithm.value,
                    measure(ours(MemoryStorage(), algorithm, 1), seconds=seconds)[0],
                    None,
                )
                continue
            mine, base = measure(
                ours(MemoryStorage(), algorithm, 1), theirs("memory://", cls, 1), seconds=seconds
            )
            row(algorithm.value, mine, base, f"limits {cls.__name__[:-11]}")
        print("memory storage (10,000 keys, round robin)")
        for algorithm, cls in PAIRS[:3]:
            assert cls is not None
            mine, base = measure(
                ours(MemoryStorage(), algorithm, 10_000),
                theirs("memory://", cls, 10_000),
                seconds=seconds,
                warm=10_200,
            )
            row(algorithm.value, mine, base, "limits")

        print("redis storage (one hot key)")
        bare = redis.Redis(port=port)
        for algorithm, cls in PAIRS:
            fns = [ours(RedisStorage(url, timeout=1.0), algorithm, 1), lambda i: bare.incr("b:i")]
            if cls is not None:
                fns.append(theirs(f"redis://127.0.0.1:{port}", cls, 1))
            got = measure(*fns, seconds=seconds)
            row(algorithm.value, got[0], got[1], "one INCR")
            if cls is not None:
                row("", got[0], got[2], f"limits {cls.__name__[:-11]}")

        print("redis: three-tier decision (org + consumer + ip), headers included")
        tiers = [
            Rule("org", LIMIT, 3600, Algorithm.GCRA, per=("org",)),
            Rule("consumer", LIMIT, 60, Algorithm.SLIDING_WINDOW, per=("org", "consumer")),
            Rule("ip", LIMIT, 60, Algorithm.FIXED_WINDOW, per=("ip",)),
        ]
        limiter = RateLimiter(RedisStorage(url, timeout=1.0), tiers)
        who = Identity(org="acme", consumer="c1", ip="10.0.0.1")
        strategy = limits.strategies.FixedWindowRateLimiter(
            limits.storage.storage_from_string(f"redis://127.0.0.1:{port}")
        )
        item = limits.RateLimitItemPerHour(LIMIT)

        def limits_three(i: int) -> None:
            for key in ("t3:org", "t3:consumer", "t3:ip"):
                strategy.hit(item, key)

        def limits_three_stats(i: int) -> None:
            for key in ("t3s:org", "t3s:consumer", "t3s:ip"):
                strategy.hit(item, key)
                strategy.get_window_stats(item, key)

        three, base3, base3s, incr = measure(
            lambda i: limiter.hit(who),
            limits_three,
            limits_three_stats,
            lambda i: bare.incr("b:i"),
            seconds=seconds,
        )
        row("meterline, 3 tiers atomic", three, base3, "limits 3 hits")
        row("", three, base3s, "limits 3 hits+stats")
        row("", three, incr, "one INCR")

        sent = 0
        original = redis.connection.Connection.send_packed_command

        def counting(self: redis.connection.Connection, *a: object, **k: object) -> None:
            nonlocal sent
            sent += 1
            original(self, *a, **k)  # type: ignore[arg-type]

        redis.connection.Connection.send_packed_command = counting  # type: ignore[method-assign]
        try:
            for _ in range(1000):
                limiter.hit(who)
        finally:
            redis.connection.Connection.send_packed_command = original  # type: ignore[method-assign]
        print(f"  redis round trips per three-tier decision: {sent / 1000:.2f}")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
