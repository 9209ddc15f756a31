"""What the rollup views cost per insert: CPU time of 50,000-event inserts into the store.

Run: ``.venv/bin/python bench/rollup_insert.py [--batches 13] [--batch 50000] [--rounds 3]``

Inserts the same pre-encoded batches of realistic traffic (the demo generator's routes,
consumers, statuses and latencies, each batch spanning a few seconds like a live flush)
into a fresh embedded store at three schemas, each in its own process (chDB allows one
store per process):

* ``raw only``: the events table with no views (the floor);
* ``v2``: schema version 2, one rollup table per width and level (12 tables, chained);
* ``v3``: schema version 3, one table per width fed through staging tables, one view per
  width writing every level, latency as sketch states;
* ``current``: the newest schema, as ``v3`` with latency as bin maps.

Prints the process CPU per insert (the engine runs in-process, so background merges are
counted too: CPU is measured until the merges settle) and the parts written per insert,
beside the ratios to ``v2`` and ``v3``. Figures vary with the machine's load; compare ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meterline.demo.generator import TrafficModel  # noqa: E402
from meterline.events import PriceTable, RawEvent, RouteNormaliser, validate_event  # noqa: E402
from meterline.events.arrow import rows_to_batch  # noqa: E402
from meterline.store import Store, store_from_url  # noqa: E402
from meterline.store import base as store_base  # noqa: E402

SCHEMAS = ("raw only", "v2", "v3", "current")
VERSIONS = {"v2": 2, "v3": 3}


def payloads(batches: int, batch: int) -> list[pa.RecordBatch]:
    """``batches`` inserts of ``batch`` events as Arrow batches, each covering a few
    seconds (what the ingest writer hands the store)."""
    import msgspec

    model = TrafficModel(seed=7)
    normaliser, prices = RouteNormaliser(), PriceTable()
    now = time.time()
    out = []
    for b in range(batches):
        start = now - (batches - b) * 5
        rows = []
        for i in range(batch):
            event = model.event(start + i * 5 / batch)
            event["event_id"] = f"e{b}-{i}"
            row = validate_event(
                msgspec.convert(event, RawEvent),
                org_id="org_bench",
                now_ms=int(now * 1000),
                retention_days=365,
                normaliser=normaliser,
                prices=prices,
            )
            if isinstance(row, list):
                rows.append(row)
        out.append(rows_to_batch(rows))
    return out


def child(schema: str, source: Path) -> dict[str, float]:
    """Insert the batches in ``source`` into a fresh store at ``schema``; CPU and parts
    per insert."""
    with pa.ipc.open_stream(source) as reader:
        data = list(reader)
    with tempfile.TemporaryDirectory() as tmp:
        store = store_from_url(f"chdb://{tmp}/store")
        if schema in VERSIONS:
            store_base.MIGRATIONS = store_base.MIGRATIONS[: VERSIONS[schema]]
        store.migrate()
        if schema == "raw only":
            for row in store.select(
                "SELECT name FROM system.tables WHERE database = 'meterline' "
                "AND engine = 'MaterializedView'"
            ):
                store.command(f"DROP VIEW {{db}}.{row['name']}")
        store.insert_batches(data[:1])  # warm up
        before = _events(store)
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in data[1:]:
            store.insert_batches([batch])
        insert_cpu = time.process_time() - cpu
        elapsed = time.perf_counter() - wall
        # Let background merges of the parts just written run, and count their CPU.
        time.sleep(3)
        total_cpu = time.process_time() - cpu
        after = _events(store)
        store.close()
    n = len(data) - 1
    return {
        "insert_cpu_ms": insert_cpu / n * 1000,
        "total_cpu_ms": total_cpu / n * 1000,
        "wall_ms": elapsed / n * 1000,
        "parts": sum(after.get(k, 0) - before.get(k, 0) for k in _PART_EVENTS) / n,
        "merges": (after.get("Merge", 0) - before.get("Merge", 0)) / n,
    }


_PART_EVENTS = ("InsertedCompactParts", "InsertedWideParts")


def _events(store: Store) -> dict[str, int]:
    """The engine's cumulative event counters (parts written, merges run)."""
    rows = store.select("SELECT event, value FROM system.events")
    return {r["event"]: int(r["value"]) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=13)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=SCHEMAS)
    parser.add_argument("--source", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.source)))
        return
    runs: dict[str, list[dict[str, float]]] = {schema: [] for schema in SCHEMAS}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "batches.arrows"
        batches = payloads(args.batches, args.batch)
        with pa.ipc.new_stream(source, batches[0].schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        # Rounds alternate the schemas, so a change in the machine's load hits all alike.
        for _ in range(args.rounds):
            for schema in SCHEMAS:
                done = subprocess.run(
                    [sys.executable, __file__, "--child", schema, "--source", str(source)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs[schema].append(json.loads(done.stdout.strip().splitlines()[-1]))
    results = {
        schema: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        for schema, rs in runs.items()
    }
    print(
        f"rollup insert cost: {args.batches - 1} inserts of {args.batch:,} events, "
        f"median of {args.rounds} rounds (process CPU; merges counted until 3 s after the "
        "last insert)"
    )
    print(
        f"{'schema':<10} | {'insert cpu ms':>13} | {'+merges ms':>10} | {'wall ms':>8} | "
        f"{'parts/insert':>12} | {'merges/insert':>13} | {'cpu vs v2':>9} | {'vs v3':>6}"
    )
    v2, v3 = results["v2"]["total_cpu_ms"], results["v3"]["total_cpu_ms"]
    for schema, r in results.items():
        print(
            f"{schema:<10} | {r['insert_cpu_ms']:>13.1f} | {r['total_cpu_ms']:>10.1f} | "
            f"{r['wall_ms']:>8.1f} | {r['parts']:>12.1f} | {r['merges']:>13.1f} | "
            f"{r['total_cpu_ms'] / v2:>8.2f}x | {r['total_cpu_ms'] / v3:>5.2f}x"
        )


if __name__ == "__main__":
    main()
