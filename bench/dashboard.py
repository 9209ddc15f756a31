"""Dashboard benchmark: ingest → number on screen in a real browser.

Run: ``.venv/bin/python bench/dashboard.py [--rounds 30 --batch 200]``

Starts a real ``meterline serve`` process and opens the overview in headless Chromium
(Debian's ``/usr/bin/chromium`` through Playwright). Each round sends a batch to
``POST /v2/events`` and times, from just before the POST:

* the baseline: the same ``metric_update`` reaching a plain WebSocket client subscribed
  exactly as the page is (the stream's own latency), and
* the page: the requests KPI showing the new total, stamped at the next animation frame
  after the DOM changed (so layout and paint are included).

Prints p50/p99 of both and the ratio page/baseline measured in the same run.

``--load`` measures it under load: ``wrk`` sends batches of ``--load-batch`` new events
at full speed (``--load-connections`` connections) to another org of the same server
from before the first round until after the last, and the events/s it got
acknowledged is printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import ServerProcess, make_tenant  # noqa: E402

from bench.ingest import template  # noqa: E402

HERE = Path(__file__).resolve().parent

WATCH = """
() => {
  window.__shown = [];
  const value = document.querySelector('[data-kpi=requests] .value');
  new MutationObserver(() => {
    const text = value.textContent;
    requestAnimationFrame(() => window.__shown.push([text, Date.now()]));
  }).observe(value, {childList: true, characterData: true, subtree: true});
}
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _events(n: int) -> list[dict[str, Any]]:
    now_ms = int(time.time() * 1000)
    return [
        {
            "event_id": uuid.uuid4().hex,
            "timestamp": now_ms,
            "method": "GET",
            "route": "/bench/dashboard",
            "status": 200 if i % 20 else 500,
            "latency_ms": 10 + i % 90,
            "consumer_id": f"c{i % 25}",
        }
        for i in range(n)
    ]


class BackgroundLoad(AbstractContextManager["BackgroundLoad"]):
    """``wrk`` sending batches of new events at full speed while the block runs.

    Started for a generous fixed duration (wrk reports only when it ends) and stopped
    with SIGINT once the block exits, which makes it print its totals; ``events_per_s``
    is what the server acknowledged over the run."""

    def __init__(self, url: str, key: str, batch: int, connections: int, work: Path) -> None:
        body = template(batch, work / "load.json")
        self.batch = batch
        self.process = subprocess.Popen(
            ["wrk", "-t1", f"-c{connections}", "-d3600s", "--timeout", "10s"]
            + ["-s", str(HERE / "ingest_wrk.lua"), url, "--", str(body), key]
            + [uuid.uuid4().hex],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.events_per_s = 0.0
        self.errors = 0

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(2)
        out, _ = self.process.communicate(timeout=60)
        line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result: {out[-500:]}")
        result = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
        self.errors = int(result["errors"])
        acked = (result["requests"] - result["errors"]) * self.batch
        self.events_per_s = acked / (result["duration_us"] / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--load", action="store_true", help="ingest at full speed meanwhile")
    parser.add_argument("--load-batch", type=int, default=5000)
    parser.add_argument("--load-connections", type=int, default=8)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    data_dir = Path(tempfile.mkdtemp(prefix="meterline-bench-dashboard-"))
    tenant = make_tenant(data_dir, "bench-dashboard", "enterprise")
    # The load goes to another org: the page's totals count the rounds' events only.
    loader = make_tenant(data_dir, "bench-load", "enterprise")
    server = ServerProcess(data_dir)
    server.start()
    token = server.token(tenant.reader_id, tenant.reader_secret)
    ingest = {"Authorization": f"Bearer {tenant.ingest_key}"}
    baseline: list[float] = []
    shown: list[float] = []
    load: BackgroundLoad | None = None
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu"],
            )
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.goto(f"{server.url}/login")
            page.fill("#client_id", tenant.reader_id)
            page.fill("#client_secret", tenant.reader_secret)
            page.click("button[type=submit]")
            page.goto(f"{server.url}/?range=15m")
            page.wait_for_selector("body[data-stream=live]", timeout=60_000)
            page.evaluate(WATCH)
            with connect(
                f"ws://127.0.0.1:{server.port}/v2/stream?token={token}", max_size=2**20
            ) as ws:
                ws.recv()
                ws.send(
                    json.dumps(
                        {
                            "action": "subscribe",
                            "subscription_id": "overview",
                            "metrics": ["requests", "error_rate", "p95_latency"],
                            "filters": {"time_window": "15m", "aggregation": "avg"},
                            "delivery_frequency": "real_time",
                        }
                    )
                )
                total = 0
                loading: AbstractContextManager[object] = nullcontext()
                if args.load:
                    load = BackgroundLoad(
                        server.url,
                        loader.ingest_key,
                        args.load_batch,
                        args.load_connections,
                        data_dir,
                    )
                    loading = load
                    time.sleep(3)  # the load reaches its pace before the first round
                with loading, httpx.Client(base_url=server.url, timeout=30) as http:
                    for _ in range(args.rounds):
                        batch = _events(args.batch)
                        total += len(batch)
                        started = time.time()
                        response = http.post("/v2/events", json=batch, headers=ingest)
                        assert response.status_code == 202, response.text
                        while True:
                            message = json.loads(ws.recv(timeout=30))
                            if message["type"] != "metric_update":
                                continue
                            if message["metrics"][0]["value"] >= total:
                                baseline.append(time.time() - started)
                                break
                        text = f"{total:,}"
                        page.wait_for_function(
                            "t => window.__shown.some(([s]) => s === t)", arg=text, timeout=30_000
                        )
                        stamps = page.evaluate("window.__shown")
                        at = next(ms for s, ms in stamps if s == text)
                        shown.append(at / 1000 - started)
                        time.sleep(0.5)
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    def line(name: str, values: list[float]) -> str:
        return (
            f"{name:<42} p50 {_pct(values, 0.5) * 1000:7.1f} ms   "
            f"p99 {_pct(values, 0.99) * 1000:7.1f} ms   "
            f"mean {statistics.mean(values) * 1000:7.1f} ms"
        )

    print(f"dashboard: {args.rounds} rounds of {args.batch} events (machine shared; noisy)")
    if load is not None:
        print(
            f"under load: {load.events_per_s:,.0f} events/s acknowledged to another org"
            f" ({args.load_batch}-event batches, {args.load_connections} connections,"
            f" {load.errors} errors)"
        )
    print(line("baseline: ingest → stream message (client)", baseline))
    print(line("ingest → KPI painted in Chromium", shown))
    ratio = _pct(shown, 0.99) / _pct(baseline, 0.99)
    print(f"ratio page/baseline p99: {ratio:.2f}  (target: page p99 < 1000 ms)")


if __name__ == "__main__":
    main()
