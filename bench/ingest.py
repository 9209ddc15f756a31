"""Ingest throughput and acknowledgement latency of a real server, beside two ceilings.

Run: ``.venv/bin/python bench/ingest.py [--duration 15] [--connections 2,8]``

For batches of 1,000 and 5,000 events, `wrk` posts pre-built bodies (every event id
unique) to a real ``meterline serve`` process on loopback, and reports sustained events/s
and ack latency p50/p99 for each number of connections (more in flight: more events/s,
longer waits), and the CPU each event cost the server and its ingest workers (steadier
than throughput on a shared machine). Measured in the same run:

* parse-only ceiling: an endpoint that only decodes the same bodies and discards them;
* store-direct: the same events inserted straight into the embedded store, per batch size.

Figures vary with the machine and its load; compare the ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    free_port,
    metric,
    process_cpu,
    start_server,
    stop,
    tenant,
    wait_ready,
)
from meterline.demo.generator import TrafficModel  # noqa: E402
from meterline.events import PriceTable, RawEvent, RouteNormaliser, validate_event  # noqa: E402
from meterline.store import store_from_url  # noqa: E402

HERE = Path(__file__).resolve().parent


def template(batch: int, path: Path) -> Path:
    model = TrafficModel(seed=batch)
    now = time.time()
    events = [model.event(now - 30 + i * 0.001) for i in range(batch)]
    for i, event in enumerate(events):
        event["event_id"] = f"@@ID@@{i}"
        event["type"] = "request"
        for key in ("model", "input_tokens", "output_tokens", "session_id", "success", "user_id"):
            event.pop(key, None)
        event.setdefault("path", "/v1/orders/1")
        event.setdefault("status", 200)
    path.write_bytes(json.dumps(events).encode())
    return path


def run_wrk(url: str, body: Path, key: str, duration: int, connections: int) -> dict[str, float]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "ingest_wrk.lua"),
        url,
        "--",
        str(body),
        key,
        secrets.token_hex(8),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT (.*)", out)
    if not match:
        raise RuntimeError(out)
    return {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}


def duplicate_events(url: str) -> int:
    """Events the server has counted as duplicates so far."""
    return int(metric(url, 'meterline_ingest_events_total{outcome="duplicate"}'))


def drain_seconds(url: str) -> float:
    """Seconds until every acknowledged event is in the store (the log is empty)."""
    started = time.perf_counter()
    while httpx.get(f"{url}/readyz", timeout=30).json()["pending_rows"] > 0:
        time.sleep(0.05)
    return time.perf_counter() - started


def store_direct(bodies: dict[int, Path], rows_total: int) -> dict[int, float]:
    """Rows/s inserting validated rows straight into a fresh embedded store."""
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = store_from_url(f"chdb://{tmp}/store")
        store.migrate()
        normaliser, prices = RouteNormaliser(), PriceTable()
        now_ms = int(time.time() * 1000)
        for batch, path in bodies.items():
            raw = msgspec.json.decode(
                path.read_bytes().replace(b"@@ID@@", b"x"), type=list[RawEvent]
            )
            rows = [
                validate_event(
                    r,
                    org_id="bench",
                    now_ms=now_ms,
                    retention_days=30,
                    normaliser=normaliser,
                    prices=prices,
                )
                for r in raw
            ]
            inserts = max(1, rows_total // batch)
            started = time.perf_counter()
            for n in range(inserts):
                for row in rows:
                    row[1] = f"{batch}-{n}-{row[1]}"  # type: ignore[index]
                store.insert_rows(rows)  # type: ignore[arg-type]
            rates[batch] = inserts * batch / (time.perf_counter() - started)
        store.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", default="2,8", help="comma-separated")
    parser.add_argument("--batches", default="1000,5000")
    parser.add_argument(
        "--warm-up", type=int, default=5, help="seconds of unreported load before measuring"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: run 'make system-deps'")
    sizes = [int(b) for b in args.batches.split(",")]
    connections = [int(c) for c in args.connections.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bodies = {b: template(b, workdir / f"batch-{b}.json") for b in sizes}

        port = free_port()
        parse_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.parse_only_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=HERE.parent,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", parse_proc, path="/")
            ceilings = {
                b: run_wrk(
                    f"http://127.0.0.1:{port}", bodies[b], "x", args.duration, max(connections)
                )
                for b in sizes
            }
        finally:
            stop(parse_proc)

        data_dir = workdir / "server"
        data_dir.mkdir()
        creds = tenant(data_dir)
        # Plan limits are policy, not capacity: measure ingest with the limiter off.
        server, url = start_server(data_dir, METERLINE_RATELIMIT_URL="off")
        try:
            # A fresh server's first seconds cost more (its memory, dedup set and store
            # parts grow from nothing): measure the steady state, not the start-up.
            run_wrk(url, bodies[sizes[0]], creds["key"], args.warm_up, max(connections))
            drain_seconds(url)
            duplicates_before = duplicate_events(url)
            measured = {}
            for b in sizes:
                for conns in connections:
                    own, workers = process_cpu(server.pid)
                    run = run_wrk(url, bodies[b], creds["key"], args.duration, conns)
                    run["drain_s"] = drain_seconds(url)
                    own_after, workers_after = process_cpu(server.pid)
                    run["server_cpu"], run["worker_cpu"] = own_after - own, workers_after - workers
                    measured[b, conns] = run
            # Every event sent is new; a duplicate is cheaper and would flatter the figures.
            if duplicates := duplicate_events(url) - duplicates_before:
                sys.exit(f"the load resent {duplicates} event ids: the figures are not valid")
        finally:
            stop(server)
        direct = store_direct(bodies, rows_total=200_000)

    print(
        f"ingest benchmark: {args.duration}s per run after {args.warm_up}s of warm-up, fsync on; "
        f"parse-only at {max(connections)} connections"
    )
    columns = (
        "batch",
        "conns",
        "acked ev/s",
        "ack p50",
        "ack p99",
        "errors",
        "drain s",
        "sustained ev/s",
        "parse-only ev/s",
        "ratio",
        "store-direct ev/s",
        "cpu µs/ev",
    )
    print(" | ".join(f"{c:>10}" for c in columns))
    for (b, conns), m in measured.items():
        top = ceilings[b]
        seconds = m["duration_us"] / 1e6
        acked = (m["requests"] - m["errors"]) * b
        ceiling = (top["requests"] - top["errors"]) * b / (top["duration_us"] / 1e6)
        sustained = acked / (seconds + m["drain_s"])
        per_event = 1e6 / max(acked, 1)
        cells = (
            f"{b}",
            f"{conns}",
            f"{acked / seconds:,.0f}",
            f"{m['p50_us'] / 1000:.1f}ms",
            f"{m['p99_us'] / 1000:.1f}ms",
            f"{int(m['errors'])}",
            f"{m['drain_s']:.1f}",
            f"{sustained:,.0f}",
            f"{ceiling:,.0f}",
            f"{sustained / ceiling:.2f}",
            f"{direct[b]:,.0f}",
            f"{m['server_cpu'] * per_event:.1f}+{m['worker_cpu'] * per_event:.1f}",
        )
        print(" | ".join(f"{cell:>10}" for cell in cells))
    print(
        "sustained = acknowledged events / (load time + time until the store held them all); "
        "ratio = sustained / parse-only; cpu = server process + ingest workers, per event"
    )


if __name__ == "__main__":
    main()
