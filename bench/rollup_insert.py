"""What the rollup views cost per insert: CPU time of 50,000-event inserts into the store.

Run: ``.venv/bin/python bench/rollup_insert.py [--batches 20] [--batch 50000]``

Inserts the same pre-encoded batches of realistic traffic (the demo generator's routes,
consumers, statuses and latencies, each batch spanning a few seconds like a live flush)
into a fresh embedded store at three schemas, each in its own process (chDB allows one
store per process):

* ``raw only``: the events table with no views (the floor);
* ``v2``: schema version 2, one rollup table per width and level (12 tables, chained);
* ``current``: the newest schema, one table per width fed through staging tables.

Prints the process CPU per insert (the engine runs in-process, so background merges are
counted too: CPU is measured until the merges settle) and the parts written per insert,
beside the ratio to ``v2``. Figures vary with the machine's load; compare ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meterline.demo.generator import TrafficModel  # noqa: E402
from meterline.events import PriceTable, RawEvent, RouteNormaliser, validate_event  # noqa: E402
from meterline.store import base as store_base  # noqa: E402
from meterline.store import encode_rows, store_from_url  # noqa: E402

SCHEMAS = ("raw only", "v2", "current")


def payloads(batches: int, batch: int) -> list[bytes]:
    """``batches`` encoded inserts of ``batch`` events, each covering a few seconds."""
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
        out.append(encode_rows(rows))  # type: ignore[arg-type]
    return out


def child(schema: str, batches: int, batch: int) -> dict[str, float]:
    """Insert into a fresh store at ``schema``; CPU and parts per insert."""
    data = payloads(batches, batch)
    with tempfile.TemporaryDirectory() as tmp:
        store = store_from_url(f"chdb://{tmp}/store")
        if schema == "v2":
            store_base.MIGRATIONS = store_base.MIGRATIONS[:2]
        store.migrate()
        if schema == "raw only":
            for row in store.select(
                "SELECT name FROM system.tables WHERE database = 'meterline' "
                "AND engine = 'MaterializedView'"
            ):
                store.command(f"DROP VIEW {{db}}.{row['name']}")
        store.insert_encoded(data[0])  # warm up
        parts_sql = (
            "SELECT count() AS n FROM system.part_log WHERE event_type = 'NewPart' "
            "AND database = 'meterline'"
        )
        try:
            parts_before = int(store.select(parts_sql)[0]["n"])
        except Exception:
            parts_before = -1
        cpu, wall = time.process_time(), time.perf_counter()
        for payload in data[1:]:
            store.insert_encoded(payload)
        insert_cpu = time.process_time() - cpu
        # Let background merges of the parts just written run, and count their CPU.
        time.sleep(3)
        total_cpu = time.process_time() - cpu
        elapsed = time.perf_counter() - wall
        parts = int(store.select(parts_sql)[0]["n"]) - parts_before if parts_before >= 0 else -1
        active = store.select(
            "SELECT count() AS n FROM system.parts WHERE database = 'meterline' AND active"
        )[0]["n"]
        store.close()
    n = len(data) - 1
    return {
        "insert_cpu_ms": insert_cpu / n * 1000,
        "total_cpu_ms": total_cpu / n * 1000,
        "wall_ms": (elapsed - 3) / n * 1000,
        "parts": parts / n if parts >= 0 else -1,
        "active_parts": float(active),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--child", choices=SCHEMAS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.batches, args.batch)))
        return
    results = {}
    for schema in SCHEMAS:
        done = subprocess.run(
            [sys.executable, __file__, "--child", schema, "--batches", str(args.batches)]
            + ["--batch", str(args.batch)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[schema] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"rollup insert cost: {args.batches - 1} inserts of {args.batch:,} events "
        "(process CPU; merges counted until 3 s after the last insert)"
    )
    print(
        f"{'schema':<10} | {'insert cpu ms':>13} | {'+merges ms':>10} | {'wall ms':>8} | "
        f"{'parts/insert':>12} | {'cpu vs v2':>9}"
    )
    base = results["v2"]["total_cpu_ms"]
    for schema, r in results.items():
        print(
            f"{schema:<10} | {r['insert_cpu_ms']:>13.1f} | {r['total_cpu_ms']:>10.1f} | "
            f"{r['wall_ms']:>8.1f} | {r['parts']:>12.1f} | {r['total_cpu_ms'] / base:>8.2f}x"
        )


if __name__ == "__main__":
    main()
