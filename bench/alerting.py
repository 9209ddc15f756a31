"""Cost of continuous anomaly detection per org and round, beside the batch detector.

Run: ``.venv/bin/python bench/alerting.py [--events 2000000] [--repeat 5]``

Bulk-loads eight days of synthetic traffic (``bench/query.py``'s loader: Zipf routes and
consumers, diurnal cycle, 5,000 consumers, 8 regions) into a fresh embedded store, then
times through the query model, median of ``--repeat`` runs:

* ``first round (cold)``: the server's first detection round for an org (the last 3
  minutes re-judged for the org and its 10 busiest routes, the region and consumer-mix
  windows, and a week of consumer × route history read from raw events);
* ``incremental``: the following rounds (that history is reused for an hour);
* ``minute only``: a round between two minute boundaries (window detectors skipped);
* ``batch (baseline)``: ``InsightService.anomalies`` over the last hour, the on-demand
  detector behind ``/v2/insights/anomalies``.

Prints each figure and the ratio to the baseline; a busy machine makes them noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.query import ORG, load  # noqa: E402
from meterline.clock import system_clock  # noqa: E402
from meterline.insight.anomalies import AnomalyEngine, z_for  # noqa: E402
from meterline.insight.rollups import InsightService  # noqa: E402
from meterline.query import QueryService  # noqa: E402
from meterline.store import store_from_url  # noqa: E402


def median_ms(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        store = store_from_url(f"chdb://{tmp}")
        store.migrate()
        seconds = load(store, args.events, args.chunk, console)
        console.print(f"loaded {args.events:,} events in {seconds:.1f} s")
        queries = QueryService(store, system_clock)
        engine = AnomalyEngine(queries)
        z = dict.fromkeys(("volume", "error_rate", "latency", "geography", "usage_pattern"), 4.0)
        end = int(time.time() - 60) // 60
        cold, found = median_ms(lambda: AnomalyEngine(queries).detect(ORG, end - 3, end, z), 1)
        incremental, _ = median_ms(lambda: engine.detect(ORG, end - 3, end, z), args.repeat)
        minute_only, _ = median_ms(
            lambda: engine.detect(ORG, end - 3, end, z, windows=False), args.repeat
        )
        batch, _ = median_ms(lambda: InsightService(queries).anomalies(ORG), args.repeat)
        store.close()
    kinds = Counter(f.kind for f in found)
    console.print(f"z = {z_for(0.5)} (sensitivity 0.5); findings of one round: {dict(kinds)}")
    console.print(f"first round (cold)      {cold:8.1f} ms   ×{cold / batch:.2f}")
    console.print(f"incremental round       {incremental:8.1f} ms   ×{incremental / batch:.2f}")
    console.print(f"minute-only round       {minute_only:8.1f} ms   ×{minute_only / batch:.2f}")
    console.print(f"batch last hour (base)  {batch:8.1f} ms   ×1.00")


if __name__ == "__main__":
    main()
