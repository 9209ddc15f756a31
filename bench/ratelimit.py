"""Rate-limit decisions per second, memory and Redis, against baselines in the same run.

Run: ``.venv/bin/python bench/ratelimit.py [--reps 21] [--batch-seconds 0.05]``. Starts its
own redis-server on a free port. Single-threaded; one hot key unless stated. Baselines:
the ``limits`` library's matching strategy on the same storage, and a bare redis-py
``INCR`` round trip.

Like with like: every contestant runs the same number of calls per batch (so both keep
the same amount of state), through the same minimal loop (a prebuilt list of arguments,
the bound method called directly), and the batches alternate A B B A ... so load changes
on a shared machine hit them alike. Each row gives medians over the repetitions: calls per
second (wall clock), CPU time of this thread per call, latency percentiles of ours (from a
separate sampling pass), and the median of the per-repetition throughput ratios with its
range (min–max), which is what to judge on a busy machine.
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
from dataclasses import dataclass

import limits
import limits.storage
import limits.strategies
import redis
import redis.connection

from meterline.ratelimit import (
    Algorithm,
    Identity,
    MemoryStorage,
    RateLimiter,
    RedisStorage,
    Rule,
    decision_headers,
)

Batch = Callable[[], object]
"""Runs one batch of calls (the same count for every contestant of a case)."""


@dataclass
class Contestant:
    """Something that decides: ``prepare(n)`` builds (untimed) the next batch of ``n``
    calls, continuing round robin over its keys; ``one(i)`` makes call ``i`` alone;
    ``settle()`` (untimed, after each batch) waits for work the batch left running in the
    background, so it is not charged to the next contestant."""

    name: str
    prepare: Callable[[int], Batch]
    one: Callable[[int], object]
    settle: Callable[[], object] = lambda: None


@dataclass
class Figures:
    """One contestant's medians over the repetitions of a case."""

    rate: float  # calls per second, wall clock
    cpu_us: float  # CPU time of this thread per call
    rates: list[float]


def measure(contestants: list[Contestant], calls: int, reps: int) -> list[Figures]:
    """Run a batch of ``calls`` of each contestant ``reps`` times, alternating their order
    every repetition (A B, then B A...)."""
    wall: list[list[float]] = [[] for _ in contestants]
    cpu: list[list[float]] = [[] for _ in contestants]
    order = list(range(len(contestants)))
    for _ in range(reps):
        for k in order:
            batch = contestants[k].prepare(calls)
            t, c = time.perf_counter(), time.thread_time()
            batch()
            c, t = time.thread_time() - c, time.perf_counter() - t
            contestants[k].settle()
            wall[k].append(calls / t)
            cpu[k].append(c / calls * 1e6)
        order.reverse()
    return [
        Figures(statistics.median(w), statistics.median(c), w)
        for w, c in zip(wall, cpu, strict=True)
    ]


def latency(call: Callable[[int], object], n: int) -> tuple[float, float]:
    """p50 and p99 in µs of ``n`` single calls, each timed on its own."""
    clock = time.perf_counter_ns
    samples = []
    for i in range(n):
        t = clock()
        call(i)
        samples.append(clock() - t)
    q = statistics.quantiles(samples, n=100)
    return q[49] / 1000, q[98] / 1000


def calibrate(contestant: Contestant, seconds: float) -> int:
    """How many calls of ``contestant`` take about ``seconds`` (at least 100)."""
    n = 100
    while True:
        batch = contestant.prepare(n)
        t = time.perf_counter()
        batch()
        took = time.perf_counter() - t
        if took >= seconds / 4 or n >= 1_000_000:
            return max(100, int(n * seconds / max(took, 1e-9)))
        n *= 4


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


def rotating(items: list[object]) -> Callable[[int], list[object]]:
    """``next(n)``: the next ``n`` items, round robin, continuing where the last ended."""
    position = 0

    def take(n: int) -> list[object]:
        nonlocal position
        out = [items[(position + i) % len(items)] for i in range(n)]
        position = (position + n) % len(items)
        return out

    return take


LIMIT = 10**9  # never refuse: measure the decision path, not the refusal path
PAIRS: list[tuple[Algorithm, type[limits.strategies.RateLimiter] | None]] = [
    (Algorithm.FIXED_WINDOW, limits.strategies.FixedWindowRateLimiter),
    (Algorithm.SLIDING_LOG, limits.strategies.MovingWindowRateLimiter),
    (Algorithm.SLIDING_WINDOW, limits.strategies.SlidingWindowCounterRateLimiter),
    (Algorithm.TOKEN_BUCKET, None),
    (Algorithm.GCRA, None),
]


def ours(storage: object, algorithm: Algorithm, keys: int) -> Contestant:
    """Meterline's limiter, one rule per consumer, over ``keys`` consumers."""
    rule = Rule("r", LIMIT, 3600, algorithm, per=("consumer",))
    hit = RateLimiter(storage, [rule]).hit  # type: ignore[arg-type]
    ids = [Identity(consumer=f"c{k}") for k in range(keys)]
    take = rotating(ids)  # type: ignore[arg-type]

    def prepare(n: int) -> Batch:
        args = take(n)

        def run() -> None:
            for who in args:
                hit(who)  # type: ignore[arg-type]

        return run

    return Contestant("meterline", prepare, lambda i: hit(ids[i % keys]))


def theirs(
    uri: str, cls: type[limits.strategies.RateLimiter], keys: int, tag: str = ""
) -> Contestant:
    """The ``limits`` library's strategy ``cls`` on storage ``uri``, over ``keys`` names."""
    storage = limits.storage.storage_from_string(uri)
    hit = cls(storage).hit
    item = limits.RateLimitItemPerHour(LIMIT)
    names = [f"{cls.__name__}{tag}:{keys}:c{k}" for k in range(keys)]
    take = rotating(names)  # type: ignore[arg-type]

    def prepare(n: int) -> Batch:
        args = take(n)

        def run() -> None:
            for name in args:
                hit(item, name)  # type: ignore[arg-type]

        return run

    def settle() -> None:
        # limits' memory storage expires keys from a timer thread, 10 ms after a call;
        # its time counts while limits runs, never in the next contestant's batch
        timer = getattr(storage, "timer", None)
        if timer is not None:
            timer.join()

    name = f"limits {cls.__name__[:-11]}"
    return Contestant(name, prepare, lambda i: hit(item, names[i % keys]), settle)


def simple(name: str, call: Callable[[int], object]) -> Contestant:
    """A contestant from one call (the argument is the call's index)."""

    def prepare(n: int) -> Batch:
        def run() -> None:
            for i in range(n):
                call(i)

        return run

    return Contestant(name, prepare, call)


def case(
    label: str, contestants: list[Contestant], reps: int, seconds: float, warm: int = 200
) -> None:
    """Measure ``contestants`` (ours first) alike and print one row per baseline."""
    for c in contestants:  # every key exists before timing starts
        c.prepare(warm)()
        c.settle()
    calls = min(calibrate(c, seconds) for c in contestants)
    for c in contestants:
        c.settle()
    figures = measure(contestants, calls, reps)
    p50, p99 = latency(contestants[0].one, min(2000, max(calls, 200)))
    mine = figures[0]
    print(
        f"  {label:<20}{mine.rate:>10,.0f}/s  CPU {mine.cpu_us:6.2f} µs"
        f"  p50 {p50:7.1f} µs  p99 {p99:7.1f} µs"
    )
    for c, base in zip(contestants[1:], figures[1:], strict=True):
        ratios = sorted(a / b for a, b in zip(mine.rates, base.rates, strict=True))
        print(
            f"  {'':<20}{statistics.median(ratios):5.2f}x ({ratios[0]:.2f}–{ratios[-1]:.2f})"
            f"  CPU {base.cpu_us / mine.cpu_us:4.2f}x  vs {c.name} {base.rate:,.0f}/s"
            f"  CPU {base.cpu_us:6.2f} µs"
        )


def count_round_trips(call: Callable[[], object], n: int = 1000) -> float:
    """Commands sent to Redis per ``call``, counted at redis-py's connection."""
    sent = 0
    original = redis.connection.Connection.send_packed_command

    def counting(self: redis.connection.Connection, *a: object, **k: object) -> None:
        nonlocal sent
        sent += 1
        original(self, *a, **k)  # type: ignore[arg-type]

    redis.connection.Connection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        for _ in range(n):
            call()
    finally:
        redis.connection.Connection.send_packed_command = original  # type: ignore[method-assign]
    return sent / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=21, help="repetitions per case")
    parser.add_argument("--batch-seconds", type=float, default=0.05, help="time per batch")
    parser.add_argument(
        "--only",
        default="memory,keys,redis,tiers",
        help="comma-separated parts: memory, keys (10,000 keys), redis, tiers (three tiers)",
    )
    options = parser.parse_args()
    reps, seconds = options.reps, options.batch_seconds
    parts = set(options.only.split(","))
    proc, port = start_redis()
    url = f"redis://127.0.0.1:{port}/0"
    try:
        print(f"medians of {reps} interleaved repetitions of batches of ~{seconds} s")
        if "memory" in parts:
            print("memory storage (one hot key)")
        for algorithm, cls in PAIRS if "memory" in parts else []:
            rivals = [theirs("memory://", cls, 1)] if cls is not None else []
            case(algorithm.value, [ours(MemoryStorage(), algorithm, 1), *rivals], reps, seconds)
        if "keys" in parts:
            print("memory storage (10,000 keys, round robin)")
        for algorithm, cls in PAIRS[:3] if "keys" in parts else []:
            assert cls is not None
            contestants = [
                ours(MemoryStorage(), algorithm, 10_000),
                theirs("memory://", cls, 10_000),
            ]
            case(algorithm.value, contestants, reps, seconds, warm=10_000)

        bare = redis.Redis(port=port)
        incr = simple("one INCR", lambda i: bare.incr("b:i"))
        if "redis" in parts:
            print("redis storage (one hot key)")
        for algorithm, cls in PAIRS if "redis" in parts else []:
            rivals = [incr]
            if cls is not None:
                rivals.append(theirs(f"redis://127.0.0.1:{port}", cls, 1))
            case(
                algorithm.value,
                [ours(RedisStorage(url, timeout=1.0), algorithm, 1), *rivals],
                reps,
                seconds,
            )

        if "tiers" not in parts:
            return
        print("redis: three-tier decision (org + consumer + ip) and its response headers")
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

        def three(i: int) -> object:
            decision = limiter.hit(who)
            return decision_headers(decision, limiter.clock())

        def limits_three(i: int) -> None:
            for key in ("t3:org", "t3:consumer", "t3:ip"):
                strategy.hit(item, key)

        def limits_three_stats(i: int) -> None:
            for key in ("t3s:org", "t3s:consumer", "t3s:ip"):
                strategy.hit(item, key)
                strategy.get_window_stats(item, key)

        case(
            "3 tiers + headers",
            [
                simple("meterline", three),
                simple("limits 3 hits", limits_three),
                simple("limits 3 hits+stats", limits_three_stats),
                incr,
            ],
            reps,
            seconds,
        )
        trips = count_round_trips(lambda: limiter.hit(who))
        print(f"  redis round trips per three-tier decision: {trips:.2f}")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
