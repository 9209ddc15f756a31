"""``meterline import`` end to end: a .gz file and stdin into a data directory (history from
2015 queryable over its dates, re-imports counted once, bad lines reported), and
``--follow`` across a log rotation into a running server."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterline.logs.parse import BadLine, parse_clf
from tests.helpers import ServerProcess, eventually, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DATASET = (
    Path(__file__).resolve().parents[3] / "shared/datasets/access-logs/elastic-apache_logs.log"
)


def meterline(*args: str, stdin: bytes | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "meterline", "import", *args, "--json", "--no-progress"],
        input=stdin,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return summary


def query(server: ServerProcess, token: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{server.url}/v2/query",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def test_gz_and_stdin_import_of_old_history(tmp_path: Path) -> None:
    lines = DATASET.read_text(encoding="utf-8", errors="replace").splitlines()
    with_garbage = lines[:100] + ["this is not a log line", ""] + lines[100:] + ["\x00\x01"]
    log = tmp_path / "access.log.gz"
    log.write_bytes(gzip.compress(("\n".join(with_garbage) + "\n").encode()))
    expected: Counter[int] = Counter()
    for number, line in enumerate(lines, 1):
        try:
            expected[int(parse_clf(line, number).status)] += 1
        except BadLine:
            pass
    stored = sum(expected.values())
    assert stored > 9900

    data = tmp_path / "data"
    tenant = make_tenant(data, "history")
    first = meterline(str(log), "--org", "history", "--data-dir", str(data))
    assert first["imported"] == stored
    assert first["bad"] == len(lines) - stored + 2
    assert first["bad_samples"][0]["line"] == 101
    assert first["bad_samples"][0]["reason"] == "not Common/Combined Log Format"

    # The same lines again, from stdin and uncompressed: nothing is counted twice.
    again = meterline(
        "-", "--org", tenant.org_id, "--data-dir", str(data), stdin="\n".join(with_garbage).encode()
    )
    assert again["imported"] == 0
    assert again["duplicates"] == stored

    server = ServerProcess(data)
    server.start()
    try:
        token = server.token(tenant.reader_id, tenant.reader_secret)
        rows = query(
            server,
            token,
            {
                "metrics": ["requests"],
                "dimensions": ["status"],
                "start": "2015-05-16T00:00:00Z",
                "end": "2015-05-22T00:00:00Z",
            },
        )
        assert {int(r["status"]): r["requests"] for r in rows} == dict(expected)
    finally:
        server.stop()


def combined(path: str, status: int) -> str:
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    return f'203.0.113.5 - - [{stamp}] "GET {path} HTTP/1.1" {status} 512 "-" "tail-test" 0.004\n'


def test_follow_tails_across_rotation(tmp_path: Path, server: ServerProcess) -> None:
    tenant = make_tenant(server.data_dir, "follower")
    token = server.token(tenant.reader_id, tenant.reader_secret)
    log = tmp_path / "access.log"
    log.write_text("".join(combined(f"/items/{i}", 200) for i in range(3)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "meterline", "import", str(log), "--follow", "--format", "combined"]
        + ["--url", server.url, "--key", tenant.ingest_key, "--json", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def total(want: int) -> None:
        rows = query(server, token, {"metrics": ["requests"], "range": "1h"})
        assert rows and rows[0]["requests"] == want

    try:
        eventually(lambda: total(3), timeout=30)
        with log.open("a") as handle:
            handle.write(combined("/items/3", 500))
            handle.write(combined("/items/4", 200)[:30])  # half a line, still being written
            handle.flush()
            eventually(lambda: total(4), timeout=30)
            handle.write(combined("/items/4", 200)[30:])
        eventually(lambda: total(5), timeout=30)
        os.rename(log, tmp_path / "access.log.1")  # rotation: a new file takes the name
        log.write_text("".join(combined(f"/rotated/{i}", 404) for i in range(2)))
        eventually(lambda: total(7), timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-3000:]
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["imported"] == 7
    assert summary["bad"] == 0
    rows = query(
        server, token, {"metrics": ["requests"], "dimensions": ["route", "status"], "range": "1h"}
    )
    assert {(r["route"], int(r["status"])): r["requests"] for r in rows} == {
        ("/items/:id", 200): 4,
        ("/items/:id", 500): 1,
        ("/rotated/:id", 404): 2,
    }
