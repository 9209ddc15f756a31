"""Analytics query latency from rollups, beside the same queries on raw events.

Run: ``.venv/bin/python bench/query.py [--events 10000000] [--repeat 7]``

Bulk-loads synthetic traffic (Zipf endpoints and consumers, diurnal cycle, lognormal
latency, error mix) over the last 8 days into a fresh embedded store — the rollups fill
through the same materialised views as live ingest — then times each query through the
query model, once planned over rollups and once forced onto raw events. Prints the median
of ``--repeat`` runs and the raw/rollup ratio; also checks both plans agree, and shows
where the rollup plan's time goes: the engine's planning of the statement alone (its
``EXPLAIN``), table reads, bucket-range conditions and rows read.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meterline.query import MetricQuery, OrderBy, compile_query, resolve_range  # noqa: E402
from meterline.store import ROLLUP_WIDTHS, Store, rollup_table, store_from_url  # noqa: E402

ORG = "org_bench"
ROUTES = 60
CONSUMERS = 5000

# One INSERT … SELECT per chunk: ClickHouse generates the rows itself, so loading 10M
# events takes seconds of generation, and the views build the rollups as in production.
# Each random draw has its own dummy argument: the engine computes identical calls once,
# which would tie the route, the status and the consumer of an event to one draw.
LOAD_SQL = f"""
INSERT INTO {{db}}.events (org_id, event_id, type, timestamp_ms, received_at, retention_days,
    method, path, route, status, latency_ms, consumer_id, region, request_size,
    response_size, ingest_batch)
SELECT
    '{ORG}',
    concat('b', toString({{offset:UInt64}} + number)),
    'request',
    ts,
    intDiv(ts, 1000),
    365,
    ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'][1 + r % 6],
    concat('/v1/resource', toString(r), '/', toString(number % 100000)),
    concat('/v1/resource', toString(r), '/:id'),
    multiIf(u < 0.004, 500, u < 0.006, 503, u < 0.03, 404, u < 0.04, 429, u < 0.1, 201, 200),
    round(exp(log(20 + r * 4) + randNormal(0, 0.6)), 3),
    concat('cus_', toString(toUInt32(pow(randUniform(0, 1, 3), 3) * {CONSUMERS}))),
    ['US', 'US', 'DE', 'GB', 'FR', 'IN', 'JP', 'BR'][1 + number % 8],
    rand() % 2000,
    rand(1) % 40000,
    'bulk'
FROM (
    SELECT
        number,
        toUInt32(pow(randUniform(0, 1, 1), 2.5) * {ROUTES}) AS r,
        randUniform(0, 1, 2) AS u,
        toInt64({{start_ms:Int64}} + (({{offset:UInt64}} + number) * {{step:Float64}})
            + 3600000 * sin((({{offset:UInt64}} + number) % 86400) / 86400 * 6.28)) AS ts
    FROM numbers({{chunk:UInt64}})
)
"""


def load(store: Store, events: int, chunk: int, console: Console) -> float:
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - 8 * 86_400_000 + 3_600_000
    step = (8 * 86_400_000 - 7_200_000) / events
    started = time.perf_counter()
    with Progress(
        TextColumn("loading events"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("load", total=events)
        for offset in range(0, events, chunk):
            size = min(chunk, events - offset)
            store.command(
                LOAD_SQL,
                {"offset": offset, "start_ms": start_ms, "step": step, "chunk": size},
            )
            progress.advance(task, size)
    return time.perf_counter() - started


def timed(
    store: Store, query: MetricQuery, rollups: bool, repeat: int
) -> tuple[float, float, list[dict[str, Any]]]:
    """Median wall and CPU milliseconds of the query, and its rows.

    The engine runs in this process, so process CPU time is the query's own work; it
    moves less than wall time when the machine is shared.
    """
    compiled = compile_query(query, ORG, use_rollups=rollups)
    walls, cpus = [], []
    rows: list[dict[str, Any]] = []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        rows = store.select(compiled.sql, compiled.params)
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000, rows


def planning(store: Store, query: MetricQuery, repeat: int) -> float:
    """Median milliseconds the engine spends planning the rollup statement, without
    reading anything: its ``EXPLAIN`` (analysis, index selection, plan optimisation)."""
    compiled = compile_query(query, ORG)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        store.select(f"EXPLAIN {compiled.sql}", compiled.params)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def profile(store: Store, query: MetricQuery) -> str:
    """Where the rollup plan's time goes: table reads, (level, bucket range) conditions
    and rows the engine read (each rollup row carries a latency sketch to unpack)."""
    compiled = compile_query(query, ORG)
    tables = {s.table for s in compiled.segments}
    conditions = sum(1 for s in compiled.segments if not s.is_raw)
    read: list[int] = []
    watch = getattr(store, "progress", None)
    if watch is None:
        return f"{len(tables)} read(s), {conditions} conditions"
    with watch(lambda p: read.append(int(p.get("read_rows", 0)))):
        store.select(compiled.sql, compiled.params)
    return f"{len(tables)} read(s), {conditions} conditions, {max(read, default=0):,} rows"


def queries(now: datetime) -> dict[str, MetricQuery]:
    day = resolve_range(range_="24h", start=None, end=None, now=now)
    week = resolve_range(range_="7d", start=None, end=None, now=now)
    kpis = ("requests", "error_rate", "latency_avg", "latency_p50", "latency_p95", "latency_p99")
    return {
        "overview 24h": MetricQuery(metrics=kpis, time_range=day),
        "overview 7d": MetricQuery(metrics=kpis, time_range=week),
        "top endpoints 7d": MetricQuery(
            metrics=("requests", "error_rate", "latency_avg", "latency_p95", "latency_p99"),
            dimensions=("method", "route"),
            time_range=week,
            order_by=(OrderBy("requests", "desc"),),
            limit=20,
        ),
        "minute series 24h": MetricQuery(
            metrics=("requests", "errors", "latency_p95"), time_range=day, granularity="minute"
        ),
    }


def _agree(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Both plans give the same groups and the same exact counts."""
    return len(a) == len(b) and all(
        x.get("m_requests") == y.get("m_requests") for x, y in zip(a, b, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = store_from_url(f"chdb://{tmp}/store")
        store.migrate()
        seconds = load(store, args.events, args.chunk, console)
        # Background merges would do this within minutes on a live server.
        for width in ROLLUP_WIDTHS:
            store.command(f"OPTIMIZE TABLE {{db}}.{rollup_table(width.name)} FINAL")
        now = datetime.now(UTC)
        print(
            f"query benchmark: {args.events:,} events over 8 days, loaded in {seconds:.1f}s "
            f"({args.events / seconds:,.0f} events/s with rollups); median of {args.repeat} runs"
        )
        print(
            f"{'query':<20} | {'rollups ms':>10} | {'cpu ms':>6} | {'of it plan':>10} | "
            f"{'raw ms':>8} | {'cpu ms':>6} | {'raw/rollups':>11} | agree | rollup plan"
        )
        for name, query in queries(now).items():
            fast, fast_cpu, rows_fast = timed(store, query, True, args.repeat)
            slow, slow_cpu, rows_slow = timed(store, query, False, args.repeat)
            plan = planning(store, query, args.repeat)
            agree = _agree(rows_fast, rows_slow)
            print(
                f"{name:<20} | {fast:>10.1f} | {fast_cpu:>6.1f} | {plan:>10.1f} | "
                f"{slow:>8.1f} | {slow_cpu:>6.1f} | {slow / fast:>10.1f}x | {agree!s:<5} | "
                f"{profile(store, query)}"
            )
        store.close()


if __name__ == "__main__":
    main()
