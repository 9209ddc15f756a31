"""The prepare pool: workers start and warm up before the first request needs them."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import subprocess
import sys
import time

import psutil

from meterline.events import PriceTable, RouteNormaliser
from meterline.events.arrow import ipc_to_batch
from meterline.ingest import BatchContext, PreparePool
from meterline.ingest.prepare import PIPE_BYTES, warm_up
from tests.helpers import eventually

POOL_OWNER = """
import time
from meterline.events import PriceTable, RouteNormaliser
from meterline.ingest import PreparePool
pool = PreparePool(2, RouteNormaliser(), PriceTable())
assert pool.wait_ready(timeout=120)
print("ready", flush=True)
time.sleep(600)
"""


def test_the_warm_up_batch_goes_through_the_whole_accepting_path() -> None:
    # A rejected warm-up event would leave the validation and Arrow encoding cold.
    batch = warm_up(RouteNormaliser(), PriceTable())
    assert batch.rejected == []
    assert batch.event_ids == ["prepare-pool-warm-up"]
    assert ipc_to_batch(batch.payload).num_rows == 1


def test_every_worker_is_started_and_warm_before_any_request() -> None:
    pool = PreparePool(2, RouteNormaliser(((r"/users/\d+", "/users/:user"),)), PriceTable())
    try:
        # Each worker signals once it has run its warm-up: both did without a request.
        assert pool.wait_ready(timeout=120)
        assert pool.wait_ready(timeout=0)  # and stay so
        now_ms = int(time.time() * 1000)
        body = json.dumps(
            [
                {
                    "event_id": f"e{i}",
                    "timestamp": now_ms,
                    "method": "GET",
                    "path": "/users/7",
                    "status": 200,
                    "latency_ms": 3.0,
                }
                for i in range(2)
            ]
        ).encode()
        context = BatchContext("org_1", 30, now_ms, "rec-1", 1 << 20, 100)
        prepared = asyncio.run(pool.prepare(body, "application/json", "", context))
        assert prepared.event_ids == ["e0", "e1"]
        assert ipc_to_batch(prepared.payload).column("route").to_pylist() == ["/users/:user"] * 2
    finally:
        pool.close()


def test_the_pipes_to_the_workers_hold_a_whole_batch_each_way() -> None:
    pool = PreparePool(1, RouteNormaliser(), PriceTable())
    try:
        executor = pool._executor
        for queue in (executor._call_queue, executor._result_queue):  # type: ignore[attr-defined]
            assert fcntl.fcntl(queue._reader.fileno(), fcntl.F_GETPIPE_SZ) >= PIPE_BYTES
        # The largest batch a request may carry makes the trip whole.
        now_ms = int(time.time() * 1000)
        events = [
            {"event_id": f"e{i}", "timestamp": now_ms, "path": f"/p/{i}", "status": 200}
            for i in range(10_000)
        ]
        body = json.dumps(events).encode()
        assert len(body) > 10 * 65_536  # a default pipe's size
        context = BatchContext("org_1", 30, now_ms, "rec-1", 10 << 20, 10_000)
        prepared = asyncio.run(pool.prepare(body, "application/json", "", context))
        assert prepared.event_ids == [e["event_id"] for e in events]
        assert ipc_to_batch(prepared.payload).num_rows == 10_000
    finally:
        pool.close()


def test_workers_end_when_the_process_that_owns_them_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-c", POOL_OWNER], stdout=subprocess.PIPE, text=True)
    workers: list[psutil.Process] = []
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "ready"
        workers = [
            child
            for child in psutil.Process(owner.pid).children()
            if "multiprocessing.spawn" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2
        owner.kill()  # no shutdown: nothing tells the workers to stop
        owner.wait(timeout=30)

        def all_gone() -> None:
            alive = [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
            assert not alive, alive

        eventually(all_gone, timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(timeout=30)
        if owner.stdout is not None:
            owner.stdout.close()
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                worker.kill()
