"""Capture under real pre-fork servers: gunicorn with two sync workers (Flask) and two
uvicorn workers (Starlette), the app preloaded in the master, whose exporter thread is
running when the workers fork. Every worker's events must reach the sink: each child
starts its own exporter thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.capture.sink import Sink
from tests.helpers import eventually, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("app", "worker_class"),
    [("flask_app", "sync"), ("asgi_app", "uvicorn.workers.UvicornWorker")],
)
def test_every_worker_exports(app: str, worker_class: str, tmp_path: Path) -> None:
    sink = Sink()
    port = free_port()
    log = tmp_path / "gunicorn.log"
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", f"tests.capture.prefork_app:{app}", "--preload"]
        + ["--workers", "2", "--worker-class", worker_class, "--bind", f"127.0.0.1:{port}"]
        + ["--graceful-timeout", "5", "--log-level", "warning"],
        cwd=ROOT,
        env={
            **os.environ,
            "METERLINE_URL": sink.url,
            "METERLINE_INGEST_KEY": "k_test.secret",
            "PYTHONPATH": str(ROOT),
        },
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    served: Counter[str] = Counter()
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> str:
            assert proc.poll() is None, log.read_text()
            try:
                response = httpx.get(f"{url}/work/0", timeout=5)
            except httpx.TransportError as exc:
                raise AssertionError(f"not serving yet: {exc}") from None
            assert response.status_code == 200
            return response.text

        served[eventually(up, timeout=60)] += 1

        def call(n: int) -> str:
            # A fresh connection each time, so requests spread over the workers.
            response = httpx.get(f"{url}/work/{n}", timeout=30)
            response.raise_for_status()
            return response.text

        for _ in range(10):  # until both workers have served (they take turns under load)
            with ThreadPoolExecutor(8) as pool:
                served.update(pool.map(call, range(1, 41)))
            if len(served) >= 2:
                break
        assert len(served) == 2, f"requests did not reach both workers: {served}"

        def arrived() -> Counter[str]:
            got = Counter(e["consumer_id"] for e in sink.delivered() if e["type"] == "request")
            assert got == served
            return got

        got = eventually(arrived, timeout=30)
        assert all(pid.startswith("pid-") for pid in got)
        # The master's own pre-fork event was sent by the master, and by no worker again.
        masters = [e for e in sink.delivered() if e.get("consumer_id") == "master"]
        assert len(masters) == 1
        # Routes are the framework's templates, from each worker alike.
        routes = {e["route"] for e in sink.delivered() if e["type"] == "request"}
        assert routes == {"/work/:n"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()
        sink.close()
