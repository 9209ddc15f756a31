"""Overhead of capture middleware on a bare Starlette app, in one run.

Three copies of the same app (bare, with Meterline's ``MeterlineMiddleware``, with the
``apitally`` client) are called in-process through ASGI (no sockets), interleaved in
rounds so drift affects all alike. Both SDKs export to a local endpoint that answers 200,
so their background threads run as in production. Prints per-request latency at p50 and
p99 and the microseconds each middleware adds over the bare app.

Run: ``.venv/bin/python bench/capture_overhead.py [--requests 20000]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meterline.capture import CaptureClient, MeterlineMiddleware


class _Null(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"accepted":0,"duplicates":0}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def order(request: Request) -> Response:
    return JSONResponse({"order_id": request.path_params["order_id"]})


def make_app(middleware: list[Middleware] | None = None) -> Starlette:
    return Starlette(routes=[Route("/orders/{order_id:int}", order)], middleware=middleware)


def apitally_app(endpoint: str) -> Starlette | None:
    try:
        from apitally.shared import activation
        from apitally.starlette import init
    except ImportError as exc:
        print(f"apitally is not installed ({exc}); skipping it")
        return None
    app = make_app()
    init(app, write_token="apt_" + "a" * 24, otlp_endpoint=endpoint, capture_logs=False)
    activation.activate()
    return app


SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/orders/42",
    "raw_path": b"/orders/42",
    "root_path": "",
    "query_string": b"",
    "headers": [
        (b"host", b"api.example.com"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"application/json"),
        (b"x-customer", b"acme"),
    ],
    "client": ("203.0.113.9", 50000),
    "server": ("127.0.0.1", 8000),
}


async def call(app: Any) -> int:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    start = time.perf_counter_ns()
    await app(dict(SCOPE), receive, send)
    return time.perf_counter_ns() - start


async def measure(apps: dict[str, Any], requests: int, rounds: int) -> dict[str, list[int]]:
    times: dict[str, list[int]] = {name: [] for name in apps}
    for app in apps.values():  # warm-up: route caches, lazy imports, exporter threads
        for _ in range(2000):
            await call(app)
    per_round = requests // rounds
    for _ in range(rounds):
        for name, app in apps.items():
            samples = times[name]
            for _ in range(per_round):
                samples.append(await call(app))
    return times


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per variant")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Null)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"

    client = CaptureClient(endpoint, "k_bench.key", identify=lambda r: r.headers.get("x-customer"))
    plain = CaptureClient(endpoint, "k_bench.key")
    apps: dict[str, Any] = {
        "bare": make_app(),
        "meterline": make_app([Middleware(MeterlineMiddleware, client=plain)]),
        "meterline+identify": make_app([Middleware(MeterlineMiddleware, client=client)]),
    }
    other = apitally_app(endpoint)
    if other is not None:
        apps["apitally"] = other

    times = asyncio.run(measure(apps, args.requests, args.rounds))
    bare50, bare99 = pct(times["bare"], 0.50), pct(times["bare"], 0.99)
    print(f"{args.requests} in-process requests per variant, {args.rounds} interleaved rounds")
    print(
        f"{'variant':<19} {'p50 µs':>9} {'p99 µs':>9} {'mean µs':>9} {'+p50 µs':>9} {'+p99 µs':>9}"
    )
    for name, samples in times.items():
        p50, p99 = pct(samples, 0.50), pct(samples, 0.99)
        mean = statistics.fmean(samples) / 1000.0
        print(
            f"{name:<19} {p50:9.1f} {p99:9.1f} {mean:9.1f} {p50 - bare50:9.1f} {p99 - bare99:9.1f}"
        )
    added = pct(times["meterline"], 0.5) - bare50
    verdict = "meets" if added <= 15 else "misses"
    print(f"meterline adds {added:.1f} µs at p50: {verdict} the 15 µs target")
    if "apitally" in times:
        theirs = pct(times["apitally"], 0.5) - bare50
        ratio = theirs / added
        print(f"apitally adds {theirs:.1f} µs at p50; apitally/meterline = {ratio:.1f}x")
    for capture in (plain, client):
        capture.flush(timeout=10)
        assert capture.exporter is not None
        stats = capture.exporter.stats
        print(f"meterline exporter: {stats.enqueued} queued, {stats.batches} batches posted")
    sink.shutdown()


if __name__ == "__main__":
    main()
