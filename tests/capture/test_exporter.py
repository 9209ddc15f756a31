"""The background exporter: batching, gzip, retries with backoff honouring Retry-After,
bounded queue dropping the oldest, flush at exit, and export from forked workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from meterline.capture import Exporter
from tests.capture.sink import Sink
from tests.helpers import eventually, free_port


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink()
    yield found
    found.close()


def events(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"event_id": f"e{i}", "path": f"/items/{i}", "status": 200} for i in range(start, n)]


def test_batches_by_size_gzipped_with_the_key(sink: Sink) -> None:
    exporter = Exporter(sink.url, "k_test.secret", batch_size=10, interval=60)
    for event in events(25):
        exporter.enqueue(event)
    assert exporter.flush(timeout=10)
    sizes = [len(batch) for _, _, batch, _ in sink.posts]
    assert sizes == [10, 10, 5]
    headers = sink.posts[0][3]
    assert headers["Authorization"] == "Bearer k_test.secret"
    assert headers["Content-Encoding"] == "gzip"
    assert [e["event_id"] for e in sink.delivered()] == [f"e{i}" for i in range(25)]
    assert exporter.stats.sent == 25
    exporter.close()


def test_partial_batch_leaves_after_the_interval(sink: Sink) -> None:
    exporter = Exporter(sink.url, "k", batch_size=1000, interval=0.1)
    for event in events(3):
        exporter.enqueue(event)

    def arrived() -> None:
        assert len(sink.delivered()) == 3

    eventually(arrived, timeout=10)
    exporter.close()


def test_retries_5xx_and_429_honouring_retry_after() -> None:
    sink = Sink([(503, {}), (429, {"Retry-After": "1"})])
    try:
        exporter = Exporter(sink.url, "k", batch_size=100, interval=60, backoff=0.01)
        for event in events(4):
            exporter.enqueue(event)
        assert exporter.flush(timeout=20)
        statuses = [status for _, status, _, _ in sink.posts]
        assert statuses == [503, 429, 202]
        # The same batch (same event ids, so the server deduplicates) is sent each time.
        assert all([e["event_id"] for e in p[2]] == ["e0", "e1", "e2", "e3"] for p in sink.posts)
        # Retry-After: 1 is honoured although the backoff alone would wait ~10 ms.
        assert sink.posts[2][0] - sink.posts[1][0] >= 0.99
        assert exporter.stats.retries == 2
        assert exporter.stats.sent == 4
        exporter.close()
    finally:
        sink.close()


def test_client_errors_are_not_retried() -> None:
    sink = Sink([(401, {})])
    try:
        exporter = Exporter(sink.url, "k", batch_size=100, interval=60, backoff=0.01)
        for event in events(2):
            exporter.enqueue(event)
        assert exporter.flush(timeout=10)
        assert len(sink.posts) == 1
        assert exporter.stats.rejected == 2
        assert exporter.stats.retries == 0
        exporter.close()
    finally:
        sink.close()


def test_network_errors_are_retried_then_counted_never_raised() -> None:
    exporter = Exporter(
        f"http://127.0.0.1:{free_port()}", "k", batch_size=100, max_attempts=3, backoff=0.01
    )
    for event in events(5):
        exporter.enqueue(event)
    assert exporter.flush(timeout=10)
    assert exporter.stats.retries == 2
    assert exporter.stats.failed == 5
    exporter.close()


def test_full_queue_drops_the_oldest_and_counts(sink: Sink) -> None:
    exporter = Exporter(sink.url, "k", max_queue=5, batch_size=1000, interval=60)
    exporter._closed = True  # keep the thread from starting so the queue fills
    for event in events(8):
        exporter.enqueue(event)
    exporter._closed = False
    assert exporter.stats.dropped == 3
    assert exporter.flush(timeout=10)
    assert [e["event_id"] for e in sink.delivered()] == ["e3", "e4", "e5", "e6", "e7"]
    exporter.close()


SCRIPT = """
import os, sys
from meterline.capture import Exporter

exporter = Exporter(sys.argv[1], "k", batch_size=1000, interval=60)
for i in range(3):
    exporter.enqueue({"event_id": f"parent-{i}", "path": "/p", "status": 200})
{body}
"""


def run_script(body: str, url: str) -> None:
    code = SCRIPT.replace("{body}", textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-c", code, url], timeout=60, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_queued_events_are_flushed_at_exit(sink: Sink) -> None:
    run_script("", sink.url)  # no flush() call: the interpreter's exit flushes
    assert sorted(e["event_id"] for e in sink.delivered()) == ["parent-0", "parent-1", "parent-2"]


def test_forked_workers_keep_exporting_without_resending_the_parents_events(sink: Sink) -> None:
    run_script(
        """
        exporter.flush(10)  # the thread runs in the parent before the fork, as in gunicorn
        exporter.enqueue({"event_id": "parent-3", "path": "/p", "status": 200})
        pids = []
        for worker in range(2):
            pid = os.fork()
            if pid == 0:
                for i in range(4):
                    exporter.enqueue({"event_id": f"w{worker}-{i}", "path": "/w", "status": 200})
                ok = exporter.flush(10)
                os._exit(0 if ok else 1)
            pids.append(pid)
        for pid in pids:
            assert os.waitpid(pid, 0)[1] == 0
        """,
        sink.url,
    )
    got = sorted(e["event_id"] for e in sink.delivered())
    want = sorted(
        [f"parent-{i}" for i in range(4)] + [f"w{w}-{i}" for w in range(2) for i in range(4)]
    )
    assert got == want
    assert len({p[3]["User-Agent"] for p in sink.posts}) == 1
