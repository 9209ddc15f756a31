"""Live stream benchmark: ingest → client latency, and fan-out to many subscribers.

Run: ``.venv/bin/python bench/stream.py [--clients 100 --subs 4 --seconds 15]``

Starts a real ``meterline serve`` process. Prints:

* ingest → ``metric_update`` latency p50/p99 over the stream, against the baseline of
  the same ingest polled through ``POST /v2/query`` every 50 ms (the store path), and
  against the dashboard's old 5 s polling (computed, not waited for);
* fan-out: clients × subscriptions receiving real-time updates while ingest runs, with
  delivered frames/s, delivery lag p50/p99 (server stamp → client receipt) and server
  CPU, against a baseline of one client with one subscription in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import ServerProcess, make_tenant  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _events(n: int, route: str) -> list[dict[str, Any]]:
    now_ms = int(time.time() * 1000)
    return [
        {
            "event_id": uuid.uuid4().hex,
            "timestamp": now_ms,
            "method": "GET",
            "route": route,
            "status": 200,
            "latency_ms": 12.5,
            "consumer_id": f"c{i % 50}",
        }
        for i in range(n)
    ]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _connect(url: str, token: str) -> Any:
    ws = await websockets.connect(f"{url}?token={token}", max_queue=None)
    await ws.recv()
    return ws


async def _subscribe(ws: Any, sub_id: str, route: str) -> None:
    await ws.send(
        json.dumps(
            {
                "action": "subscribe",
                "subscription_id": sub_id,
                "metrics": ["requests", "p95_latency", "error_rate", "active_consumers"],
                "filters": {"time_window": "5m", "endpoints": [route]},
                "delivery_frequency": "real_time",
            }
        )
    )


async def ingest_latency(
    server: ServerProcess, ingest_key: str, token: str, rounds: int
) -> tuple[list[float], list[float]]:
    ws_url = f"ws://127.0.0.1:{server.port}/v2/stream"
    route = f"/bench/latency/{uuid.uuid4().hex[:6]}"
    ws = await _connect(ws_url, token)
    await _subscribe(ws, "lat", route)
    stream_lat: list[float] = []
    store_lat: list[float] = []
    headers = {"Authorization": f"Bearer {ingest_key}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        total = 0
        for _ in range(rounds):
            batch = _events(200, route)
            total += len(batch)
            started = time.perf_counter()
            response = await http.post("/v2/events", json=batch, headers=headers)
            assert response.status_code == 202
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "metric_update" and message["metrics"][0]["value"] >= total:
                    stream_lat.append(time.perf_counter() - started)
                    break
            while True:
                found = await http.post(
                    "/v2/query",
                    json={
                        "metrics": ["requests"],
                        "range": "5m",
                        "filters": [{"field": "route", "op": "eq", "value": route}],
                    },
                    headers={"Authorization": f"Bearer {token}"},
                )
                if found.json()["data"][0]["requests"] >= total:
                    store_lat.append(time.perf_counter() - started)
                    break
                await asyncio.sleep(0.05)
    await ws.close()
    return stream_lat, store_lat


async def fan_out(
    server: ServerProcess,
    ingest_key: str,
    token: str,
    clients: int,
    subs: int,
    seconds: float,
    stalled: bool = False,
) -> dict[str, float]:
    ws_url = f"ws://127.0.0.1:{server.port}/v2/stream"
    route = f"/bench/fanout/{uuid.uuid4().hex[:6]}"
    sockets = [await _connect(ws_url, token) for _ in range(clients)]
    for ws in sockets:
        for s in range(subs):
            await _subscribe(ws, f"s{s}", route)
    # A client that subscribes and then never reads: the others must not notice it.
    stuck = await _connect(ws_url, token) if stalled else None
    if stuck is not None:
        for s in range(subs):
            await _subscribe(stuck, f"s{s}", route)
    lags: list[float] = []
    frames = 0
    stop = time.monotonic() + seconds

    async def reader(ws: Any) -> None:
        nonlocal frames
        while time.monotonic() < stop:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.05, stop - time.monotonic()))
            except TimeoutError:
                return
            message = json.loads(raw)
            if message["type"] == "metric_update":
                frames += 1
                sent = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
                lags.append(time.time() - sent.timestamp())

    async def ingester() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            while time.monotonic() < stop:
                await http.post(
                    "/v2/events",
                    json=_events(50, route),
                    headers={"Authorization": f"Bearer {ingest_key}"},
                )
                await asyncio.sleep(0.1)

    assert server.proc is not None
    await asyncio.sleep(1.0)  # let the snapshots drain before measuring
    frames, lags = 0, []
    cpu0, wall0 = _cpu_seconds(server.proc.pid), time.monotonic()
    await asyncio.gather(ingester(), *(reader(ws) for ws in sockets))
    cpu = (_cpu_seconds(server.proc.pid) - cpu0) / (time.monotonic() - wall0)
    for ws in sockets:
        await ws.close()
    if stuck is not None:
        stuck.transport.abort()
    return {
        "frames_per_s": frames / seconds,
        "lag_p50_ms": _pct(lags, 0.5) * 1000 if lags else float("nan"),
        "lag_p99_ms": _pct(lags, 0.99) * 1000 if lags else float("nan"),
        "server_cpu_pct": cpu * 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--subs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        tenant = make_tenant(data_dir, "bench", "enterprise")
        server = ServerProcess(data_dir, env={"METERLINE_FLUSH_INTERVAL": "1.0"})
        server.start()
        try:
            token = server.token(tenant.reader_id, tenant.reader_secret)
            stream_lat, store_lat = asyncio.run(
                ingest_latency(server, tenant.ingest_key, token, args.rounds)
            )
            print(f"ingest → client, {args.rounds} batches of 200 events")
            for name, values in (("stream", stream_lat), ("store poll 50 ms", store_lat)):
                print(
                    f"  {name:<18} p50 {_pct(values, 0.5) * 1000:8.1f} ms"
                    f"   p99 {_pct(values, 0.99) * 1000:8.1f} ms"
                )
            ratio = statistics.median(store_lat) / statistics.median(stream_lat)
            print(f"  stream is {ratio:.1f}x faster (p50) than the store path")
            print(
                f"  old dashboard (5 s polling) expected ≈ {2500 + _pct(store_lat, 0.5) * 1000:.0f}"
                f" ms p50: {(2.5 + _pct(store_lat, 0.5)) / _pct(stream_lat, 0.5):.0f}x the stream"
            )
            base = asyncio.run(fan_out(server, tenant.ingest_key, token, 1, 1, args.seconds))
            wide = asyncio.run(
                fan_out(server, tenant.ingest_key, token, args.clients, args.subs, args.seconds)
            )
            stall = asyncio.run(
                fan_out(
                    server,
                    tenant.ingest_key,
                    token,
                    args.clients,
                    args.subs,
                    args.seconds,
                    stalled=True,
                )
            )
            print(f"fan-out over {args.seconds:.0f} s with ingest every 100 ms")
            for label, figures in (
                ("baseline 1 × 1", base),
                (f"{args.clients} clients × {args.subs} subs", wide),
                ("same + 1 stalled client", stall),
            ):
                print(
                    f"  {label:<22} {figures['frames_per_s']:8.1f} frames/s"
                    f"   lag p50 {figures['lag_p50_ms']:6.1f} ms"
                    f"   p99 {figures['lag_p99_ms']:6.1f} ms"
                    f"   server CPU {figures['server_cpu_pct']:5.1f} %"
                )
            print(
                f"  ratio: {wide['frames_per_s'] / base['frames_per_s']:.0f}x the frames,"
                f" {wide['lag_p99_ms'] / base['lag_p99_ms']:.1f}x the p99 lag,"
                f" {wide['server_cpu_pct'] / max(base['server_cpu_pct'], 0.1):.1f}x the CPU"
            )
            print(
                "  with one stalled client the others received"
                f" {stall['frames_per_s'] / wide['frames_per_s'] * 100:.1f} % of the frames"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
