"""Live stream benchmark: ingest → client latency, and fan-out to many subscribers.

Run: ``.venv/bin/python bench/stream.py [--load 5000 --clients 200 --wide 1000 --seconds 15]``
(``--no-fanout --rounds 100``: the ingest → client part alone).

Starts a real ``meterline serve`` process. Prints:

* ingest → ``metric_update`` latency p50/p99 over the stream while ``--load`` events/s of
  other traffic are ingested (from the start of the ``POST /v2/events`` to the update
  that counts its batch), split into the POST's acknowledgement (the events durable) and
  ack → message (the live window, the next ``real_time`` tick — every 250 ms — and the
  socket), against the baseline of the same ingest polled through ``POST /v2/query``
  every 50 ms (the store path), and against the dashboard's old 5 s polling (computed,
  not waited for);
* fan-out: first a bare Starlette broadcast loop (``bench/stream_baseline_app.py``, the
  FastAPI docs' pattern, under uvicorn with the same WebSocket settings) sending one
  ~1 KB frame to every socket every 100 ms; then ``meterline serve`` with ``--clients``
  connections each holding ten 1 s subscriptions (10 updates/s of ~1 KB) —
  updates/s per client, frame size, delivery p50/p99 (the frame's stamp → client
  receipt; both servers stamp a frame when its round or tick starts, so waiting behind
  other frames of the same round counts, a late timer does not) and the server's CPU
  (its process and children, from /proc through psutil) — and the ratios to the
  baseline; the same with one stalled client (never reads, tiny receive window, 20
  subscriptions): the share of updates the others still receive and whether the server
  evicted it; and ``--wide`` clients against the baseline with as many.

The clients run in two processes on the same (shared) cores as the server: on a busy
machine their own lag is part of the delivery figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import ServerProcess, free_port, make_tenant  # noqa: E402

from bench._common import metric, process_cpu  # noqa: E402
from meterline.config import Settings  # noqa: E402


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


@dataclass
class Latencies:
    """Per round, seconds from the start of the ingest POST: to its acknowledgement
    (``ack``), to the stream's ``metric_update`` that counts the batch (``stream``; the
    split ``stream - ack`` is the live path after the events are durable) and to the
    store poll that sees them (``store``)."""

    ack: list[float] = field(default_factory=list)
    stream: list[float] = field(default_factory=list)
    store: list[float] = field(default_factory=list)

    @property
    def after_ack(self) -> list[float]:
        return [s - a for s, a in zip(self.stream, self.ack, strict=True)]


async def ingest_latency(
    server: ServerProcess, ingest_key: str, token: str, rounds: int, load: int = 0
) -> tuple[Latencies, float]:
    """Ingest → update latencies over the stream and over store polling, while ``load``
    events/s of other traffic are ingested; returns them and the load achieved."""
    stop = asyncio.Event()
    loader = (
        asyncio.get_running_loop().create_task(background_load(server, ingest_key, load, stop))
        if load
        else None
    )
    started_load = time.monotonic()
    found = await _latencies(server, ingest_key, token, rounds)
    stop.set()
    achieved = (await loader) / (time.monotonic() - started_load) if loader else 0.0
    return found, achieved


async def _latencies(server: ServerProcess, ingest_key: str, token: str, rounds: int) -> Latencies:
    ws_url = f"ws://127.0.0.1:{server.port}/v2/stream"
    route = f"/bench/latency/{uuid.uuid4().hex[:6]}"
    ws = await _connect(ws_url, token)
    await _subscribe(ws, "lat", route)
    found = Latencies()
    headers = {"Authorization": f"Bearer {ingest_key}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        total = 0
        for _ in range(rounds):
            batch = _events(200, route)
            total += len(batch)
            started = time.perf_counter()
            response = await http.post("/v2/events", json=batch, headers=headers)
            found.ack.append(time.perf_counter() - started)
            assert response.status_code == 202, response.text
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "metric_update" and message["metrics"][0]["value"] >= total:
                    found.stream.append(time.perf_counter() - started)
                    break
            while True:
                polled = await http.post(
                    "/v2/query",
                    json={
                        "metrics": ["requests"],
                        "range": "5m",
                        "filters": [{"field": "route", "op": "eq", "value": route}],
                    },
                    headers={"Authorization": f"Bearer {token}"},
                )
                if polled.json()["data"][0]["requests"] >= total:
                    found.store.append(time.perf_counter() - started)
                    break
                await asyncio.sleep(0.05)
    await ws.close()
    return found


FANOUT_SUBS = tuple((f"s{n}", f"{n + 1}m") for n in range(10))
"""Per client: ten subscriptions of every metric (~1 KB frames) delivered every second,
over windows of 1 to 10 minutes — ten shared streams, 10 updates/s per client whether
or not traffic changes the values (a 1 s stream is never coalesced)."""


async def _subscribe_all(
    ws: Any, sub_id: str, route: str, frequency: str, window: str, raw: bool = False
) -> None:
    filters: dict[str, Any] = {"time_window": window, "endpoints": [route]}
    if raw:
        filters["aggregation"] = "raw"
    await ws.send(
        json.dumps(
            {
                "action": "subscribe",
                "subscription_id": sub_id,
                "metrics": "all",
                "filters": filters,
                "delivery_frequency": frequency,
            }
        )
    )


def _stalled_socket() -> socket.socket:
    # A tiny receive window, so the server's writes to this client block quickly.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def _server_time(raw: str) -> float:
    # The update's own stamp is its last "timestamp" (points carry earlier ones).
    at = raw.rfind('"timestamp":"') + 13
    return datetime.fromisoformat(raw[at : at + 23] + "+00:00").timestamp()


async def _client_group(
    url: str,
    tokens: list[str],
    route: str,
    ready: Any,
    measuring: Any,
    done: Any,
) -> tuple[int, list[float], list[int]]:
    """Connect ``len(tokens)`` clients, read everything from the start (so nothing piles
    up while others connect), and record only what the server stamped while
    ``measuring`` is set."""
    frames = 0
    lags: list[float] = []
    sizes: list[int] = []
    state = {"on": False, "since": 0.0}

    async def open_one(token: str) -> Any:
        ws = await websockets.connect(f"{url}?token={token}", max_queue=None, open_timeout=120)
        for sub_id, window in FANOUT_SUBS:
            await _subscribe_all(ws, sub_id, route, "1s", window)
        return ws

    async def reader(ws: Any) -> None:
        nonlocal frames
        try:
            async for raw in ws:
                if state["on"] and raw.startswith('{"type":"metric_update"'):
                    sent = _server_time(raw)
                    if sent >= state["since"]:
                        frames += 1
                        sizes.append(len(raw))
                        lags.append(time.time() - sent)
        except websockets.ConnectionClosed:
            return

    sockets: list[Any] = []
    tasks = []
    for start in range(0, len(tokens), 50):
        batch = await asyncio.gather(*(open_one(t) for t in tokens[start : start + 50]))
        sockets += batch
        tasks += [asyncio.get_running_loop().create_task(reader(ws)) for ws in batch]
    ready.set()
    while not measuring.is_set():
        await asyncio.sleep(0.02)
    state["on"], state["since"] = True, time.time()
    while not done.is_set():
        await asyncio.sleep(0.02)
    state["on"] = False
    for ws in sockets:
        await ws.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return frames, lags, sizes


def _run_group(*args: Any) -> tuple[int, list[float], list[int]]:
    return asyncio.run(_client_group(*args))


@dataclass
class Target:
    """A server to fan out from: where clients connect, whose CPU counts, and (for a
    Meterline server) how to make its values change and how to read its evictions."""

    ws_url: str
    pid: int
    tokens: list[str]
    route: str = "/bench/fanout"
    feed: Any = None
    evictions: Any = None


def meterline_target(
    server: ServerProcess, tenants: list[tuple[str, str]], feed: bool = False
) -> Target:
    """Clients of ``server`` spread over ``tenants`` ((ingest key, token) pairs); with
    ``feed``, traffic is ingested every 100 ms while measuring (its CPU counts too)."""
    assert server.proc is not None
    route = f"/bench/fanout/{uuid.uuid4().hex[:6]}"

    async def feed_traffic(stop: float) -> None:
        # A few events per tenant every 100 ms: every real-time value changes every tick,
        # at as little ingest cost as possible (its CPU is measured with one client).
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            while time.monotonic() < stop:
                for key, _ in tenants:
                    await http.post(
                        "/v2/events",
                        json=_events(5, route),
                        headers={"Authorization": f"Bearer {key}"},
                    )
                await asyncio.sleep(0.1)

    return Target(
        f"ws://127.0.0.1:{server.port}/v2/stream",
        server.proc.pid,
        [t for _, t in tenants],
        route,
        feed_traffic if feed else None,
        lambda: _evictions(server),
    )


async def fan_out(
    target: Target,
    clients: int,
    seconds: float,
    stalled: bool = False,
    processes: int = 2,
) -> dict[str, float]:
    """``clients`` connections (spread over the target's tokens and over ``processes``
    client processes) each holding :data:`FANOUT_SUBS`, measured for ``seconds``."""
    manager = multiprocessing.Manager()
    measuring, done = manager.Event(), manager.Event()
    readies = [manager.Event() for _ in range(processes)]
    tokens = [target.tokens[i % len(target.tokens)] for i in range(clients)]
    groups = [tokens[i::processes] for i in range(processes)]
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(processes)
    futures = [
        loop.run_in_executor(pool, _run_group, target.ws_url, g, target.route, r, measuring, done)
        for g, r in zip(groups, readies, strict=True)
        if g
    ]
    # A client that subscribes and then never reads: the others must not notice it, and
    # the server must evict it (write deadline 10 s).
    stuck = None
    if stalled:
        sock = _stalled_socket()
        port = int(target.ws_url.split(":")[2].split("/")[0])
        sock.connect(("127.0.0.1", port))
        stuck = await websockets.connect(
            f"{target.ws_url}?token={target.tokens[0]}",
            sock=sock,
            max_queue=1,
            open_timeout=120,
        )
        # 20 subscriptions of one more shared stream (1 h with per-minute points, ~10 KB
        # frames): one extra computation a second, and enough bytes to fill the socket
        # buffers within seconds, so the server's write deadline comes into play.
        for n in range(20):
            await _subscribe_all(stuck, f"big{n}", target.route, "1s", "1h", raw=True)
    for ready, group in zip(readies, groups, strict=True):
        while group and not ready.is_set():
            for failed in [f for f in futures if f.done() and f.exception()]:
                raise RuntimeError("a client process failed to connect") from failed.exception()
            await asyncio.sleep(0.1)
    evictions0 = target.evictions() if target.evictions else 0.0
    await asyncio.sleep(2.0)  # snapshots out of the way

    stop = time.monotonic() + seconds
    measuring.set()
    cpu0, wall0 = sum(process_cpu(target.pid)), time.monotonic()
    if target.feed is not None:
        await target.feed(stop)
    else:
        await asyncio.sleep(seconds)
    cpu = (sum(process_cpu(target.pid)) - cpu0) / (time.monotonic() - wall0)
    done.set()
    measured = time.monotonic() - wall0  # what the clients counted over, give or take
    results = await asyncio.gather(*futures)
    pool.shutdown()
    manager.shutdown()
    evicted = (target.evictions() - evictions0) if target.evictions else 0.0
    if stuck is not None:
        stuck.transport.abort()
    frames = sum(r[0] for r in results)
    lags = [x for r in results for x in r[1]]
    sizes = [x for r in results for x in r[2]]
    return {
        "frames_per_s": frames / measured,
        "per_client_per_s": frames / measured / clients,
        "frame_bytes": statistics.mean(sizes) if sizes else float("nan"),
        "lag_p50_ms": _pct(lags, 0.5) * 1000 if lags else float("nan"),
        "lag_p99_ms": _pct(lags, 0.99) * 1000 if lags else float("nan"),
        "server_cpu_pct": cpu * 100,
        "evicted": evicted,
    }


def _evictions(server: ServerProcess) -> float:
    return metric(server.url, "meterline_stream_slow_consumer_evictions_total")


async def background_load(server: ServerProcess, key: str, rate: int, stop: asyncio.Event) -> int:
    """Ingest ``rate`` events/s (batches of 1,000) until ``stop``; returns events sent."""
    sent = 0
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        while not stop.is_set():
            due = (time.monotonic() - started) * rate
            if sent >= due:
                await asyncio.sleep(0.01)
                continue
            response = await http.post(
                "/v2/events",
                json=_events(1000, "/bench/load"),
                headers={"Authorization": f"Bearer {key}"},
            )
            sent += 1000 if response.status_code == 202 else 0
    return sent


@contextlib.contextmanager
def baseline_server(settings: Settings, data_dir: Path) -> Iterator[Target]:
    """The bare Starlette broadcast loop under uvicorn, with Meterline's WebSocket settings."""
    port = free_port()
    log = data_dir / "baseline.log"
    with open(log, "ab") as handle:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.stream_baseline_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--ws",
                settings.stream_ws,
                "--ws-per-message-deflate",
                str(settings.stream_ws_deflate),
            ],
            stdout=handle,
            stderr=handle,
            cwd=Path(__file__).resolve().parents[1],
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"baseline server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Target(f"ws://127.0.0.1:{port}/v2/stream", proc.pid, ["-"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _print_ingest(args: argparse.Namespace, server: ServerProcess, key: str, token: str) -> None:
    found, achieved = asyncio.run(ingest_latency(server, key, token, args.rounds, args.load))
    print(
        f"ingest → client, {args.rounds} batches of 200 events,"
        f" under {achieved:,.0f} events/s of other ingest (asked {args.load:,})"
    )
    for name, values in (
        ("stream", found.stream),
        ("  POST → ack", found.ack),
        ("  ack → message", found.after_ack),
        ("store poll 50 ms", found.store),
    ):
        print(
            f"  {name:<18} p50 {_pct(values, 0.5) * 1000:8.1f} ms"
            f"   p99 {_pct(values, 0.99) * 1000:8.1f} ms"
            f"   max {max(values) * 1000:8.1f} ms"
        )
    ratio = statistics.median(found.store) / statistics.median(found.stream)
    print(f"  stream is {ratio:.1f}x faster (p50) than the store path")
    print(
        f"  old dashboard (5 s polling) expected ≈ {2500 + _pct(found.store, 0.5) * 1000:.0f}"
        f" ms p50: {(2.5 + _pct(found.store, 0.5)) / _pct(found.stream, 0.5):.0f}x the stream"
    )


def _line(label: str, f: dict[str, float]) -> str:
    return (
        f"  {label:<24} {f['per_client_per_s']:5.1f} updates/s/client"
        f" of {f['frame_bytes']:5.0f} B   delivery p50 {f['lag_p50_ms']:6.1f} ms"
        f"   p99 {f['lag_p99_ms']:7.1f} ms   server CPU {f['server_cpu_pct']:5.1f} %"
        f"   evicted {f['evicted']:.0f}"
    )


def _print_fan_out(
    args: argparse.Namespace,
    base: dict[str, float],
    base_wide: dict[str, float] | None,
    results: list[tuple[str, dict[str, float]]],
) -> None:
    print(
        f"fan-out over {args.seconds:.0f} s; Meterline:"
        f" {'ingest every 100 ms, ' if args.feed else ''}per client"
        f" {len(FANOUT_SUBS)} subscriptions of every metric at 1 s;"
        " baseline: one frame to every socket every 100 ms"
    )
    print(_line(f"baseline {args.clients} clients", base))
    if base_wide is not None:
        print(_line(f"baseline {args.wide} clients", base_wide))
    for label, f in results:
        print(_line(label, f))
    ours = results[0][1]
    print(
        f"  {args.clients} clients, Meterline vs bare Starlette loop:"
        f" {ours['server_cpu_pct'] / max(base['server_cpu_pct'], 0.1):.2f}x the CPU,"
        f" {ours['lag_p99_ms'] / base['lag_p99_ms']:.2f}x the delivery p99"
    )
    if args.wide and base_wide is not None:
        wide = results[-1][1]
        print(
            f"  {args.wide} clients, Meterline vs bare Starlette loop:"
            f" {wide['server_cpu_pct'] / max(base_wide['server_cpu_pct'], 0.1):.2f}x the CPU,"
            f" {wide['lag_p99_ms'] / base_wide['lag_p99_ms']:.2f}x the delivery p99"
        )
    if not args.no_stall:
        stall = results[1][1]
        print(
            "  with one stalled client the others received"
            f" {stall['per_client_per_s'] / len(FANOUT_SUBS) * 100:.1f} % of the"
            f" {len(FANOUT_SUBS)} updates/s they subscribed to"
            f" ({stall['per_client_per_s'] / ours['per_client_per_s'] * 100:.1f} % of the run"
            f" without it); stalled client evicted: {'yes' if stall['evicted'] >= 1 else 'no'}"
        )


def _meterline_fan_out(
    args: argparse.Namespace, server: ServerProcess, tokens: list[tuple[str, str]]
) -> list[tuple[str, dict[str, float]]]:
    """The Meterline fan-out runs: ``--clients``, with a stalled one, and ``--wide``."""
    one = meterline_target(server, tokens[:1], args.feed)
    runs = [(f"meterline {args.clients} clients", fan_out(one, args.clients, args.seconds))]
    if not args.no_stall:
        runs.append(
            (
                f"meterline {args.clients} + 1 stalled",
                fan_out(one, args.clients, args.seconds + 10, stalled=True),
            )
        )
    if args.wide:
        both = meterline_target(server, tokens, args.feed)
        runs.append((f"meterline {args.wide} clients", fan_out(both, args.wide, args.seconds)))
    return [(label, asyncio.run(run)) for label, run in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--load", type=int, default=5000, help="background ingest, events/s")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--wide", type=int, default=1000, help="0 skips the wide run")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-ingest", action="store_true", help="skip ingest → client")
    parser.add_argument("--no-stall", action="store_true", help="skip the stalled-client run")
    parser.add_argument("--no-fanout", action="store_true", help="skip every fan-out run")
    parser.add_argument(
        "--feed", action="store_true", help="also ingest every 100 ms during the fan-out runs"
    )
    args = parser.parse_args()
    settings = Settings.from_env()
    print(
        f"WebSocket server: uvicorn {uvicorn.__version__} ws={settings.stream_ws}"
        f" per-message-deflate={'on' if settings.stream_ws_deflate else 'off'};"
        f" {os.cpu_count()} cores shared with the client processes;"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        # Two enterprise orgs for fan-out (1,000 connections are over one org's 500 per
        # node), a third for ingest → client, whose request budget the upgrades leave alone.
        tenants = [make_tenant(data_dir, f"bench{i}", "enterprise") for i in range(3)]
        if not args.no_fanout:
            with baseline_server(settings, data_dir) as bare:
                base = asyncio.run(fan_out(bare, args.clients, args.seconds))
                base_wide = (
                    asyncio.run(fan_out(bare, args.wide, args.seconds)) if args.wide else None
                )
        server = ServerProcess(data_dir, env={"METERLINE_FLUSH_INTERVAL": "1.0"})
        server.start()
        try:
            tokens = [(t.ingest_key, server.token(t.reader_id, t.reader_secret)) for t in tenants]
            latency_tenant, tokens = tokens[2], tokens[:2]
            if not args.no_fanout:
                # Fan-out first, on a fresh server: the ingest run leaves the store busy
                # (flushes, merges) for a while after it.
                _print_fan_out(args, base, base_wide, _meterline_fan_out(args, server, tokens))
            if not args.no_ingest:
                _print_ingest(args, server, *latency_tenant)
                lag = metric(server.url, "meterline_stream_tick_lag_seconds")
                print(f"  the stream's tick ran {lag:.2f} s late (smoothed) at the end of it")
        finally:
            server.stop()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
