"""The storage engine's own parsing of Common/Combined logs makes exactly the events the
Python parser makes: the same file imported with and without ``--engine`` into two data
directories gives identical stored rows (every column but the arrival time), the same
counts and the same bad lines; a re-import through the other path counts nothing twice;
and the rollups hold what the raw events hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_tenant

pytestmark = pytest.mark.slow

DATASET = (
    Path(__file__).resolve().parents[3] / "shared/datasets/access-logs/elastic-apache_logs.log"
)
T = "[10/Oct/2000:13:55:36 -0700]"
LINES = [
    # variants the engine takes itself
    f'example.com 203.0.113.9 - alice {T} "GET /a/123?x=1 HTTP/1.1" 200 2326 "-" "curl/8" 0.250',
    '203.0.113.9 - - [10/Oct/2000:13:55:36 +0130] "POST /b HTTP/1.0" 201 - 1500',
    '2001:db8::7 - - [31/Feb/2021:23:59:59 +0000] "DELETE /c/abcdef0123456789 HTTP/1.1" 404 0',
    f'host.example - - {T} "PUT /d/e@x.org HTTP/1.1" 204 0 "http://r/" "{"ü" * 600}"  ',
    f'198.51.100.1 - - {T} "HEAD / HTTP/1.1" 200 0 "-" "-" 12',
    '198.51.100.1 - - [01/Jan/1999:00:00:00 -1200] "OPTIONS /old HTTP/1.1" 301 17',
    # variants left to Python, read there
    f'1.2.3.4 - - {T} "GET /q HTTP/1.1" 200 5 "-" "a \\"quoted\\" agent"',
    f'1.2.3.4 - - {T} "GET http://example.com/e/5?z HTTP/1.1" 200 5 "-" "proxy"',
    f'1.2.3.4 - ü {T} "GET /u HTTP/1.1" 200 5',
    # bad lines, with the Python parser's reasons
    f'1.2.3.4\t- - {T} "GET /t HTTP/1.1" 200 5',
    f'1.2.3.4 - - {T} "-" 408 0 "-" "-"',
    '1.2.3.4 - - [10/Oct/2999:13:55:36 -0700] "GET /future HTTP/1.1" 200 5',
    f'1.2.3.4 - - {T} "GET /s HTTP/1.1" 999 5',
    f'1.2.3.4 - - {T} "get /lower HTTP/1.1" 200 5',
    f'1.2.3.4 - - {T} "GET ?only-query HTTP/1.1" 200 5',
    "garbage",
    "",
    "   ",
]
COLUMNS = (
    "event_id, type, toUnixTimestamp64Milli(timestamp) AS ts, retention_days, method, path, "
    "route, status, latency_ms, consumer_id, user_id, response_size, request_size, "
    "user_agent, client_ip, success, properties"
)
DUMP = f"""
import json, sys
from meterline.store.chdb import ChdbStore
store = ChdbStore(sys.argv[1])
rows = store.select("SELECT {COLUMNS} FROM {{db}}.events ORDER BY event_id")
totals = store.select(
    "SELECT toString(bucket) AS b, route, sum(requests) AS n, sum(response_bytes) AS bytes "
    "FROM {{db}}.rollup_routes WHERE level = 'hour' GROUP BY b, route ORDER BY b, route"
)
raw = store.select(
    "SELECT toString(toStartOfHour(timestamp)) AS b, route, count() AS n, "
    "sum(response_size) AS bytes FROM {{db}}.events GROUP BY b, route ORDER BY b, route"
)
days = store.select("SELECT sum(requests) AS n FROM {{db}}.rollup_full WHERE level = 'day'")
engine = store.select("SELECT count() AS n FROM {{db}}.events WHERE ingest_batch = 'log-import'")
store.close()
out = {{"rows": rows, "rollup": totals, "raw": raw, "days": days, "by_engine": engine[0]["n"]}}
print(json.dumps(out))
"""


def run(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "meterline", *args],
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def dump(data: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", DUMP, str(data / "store")], capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def test_engine_and_python_paths_store_the_same_events(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    dataset = DATASET.read_bytes().splitlines()[:400]
    log.write_bytes(b"\n".join([*dataset, *(line.encode() for line in LINES)]) + b"\n")
    summaries = {}
    for mode in ("engine", "no-engine"):
        data = tmp_path / mode
        make_tenant(data, "parity")
        summaries[mode] = run(
            "import", str(log), "--org", "parity", "--data-dir", str(data), "--format",
            "combined", f"--{mode}", "--json", "--no-progress",
        )  # fmt: skip
    fast, slow = summaries["engine"], summaries["no-engine"]
    assert fast["lines"] == slow["lines"] == len(dataset) + len(LINES)
    assert fast["imported"] == slow["imported"] > 400
    assert fast["bad"] == slow["bad"] == 7
    fast_bad = [(s["line"], s["reason"]) for s in fast["bad_samples"]]
    assert fast_bad == [(s["line"], s["reason"]) for s in slow["bad_samples"]]
    assert fast["lines_per_second"] > 0

    stored = {mode: dump(tmp_path / mode) for mode in ("engine", "no-engine")}
    assert stored["engine"]["rows"] == stored["no-engine"]["rows"]
    # The engine wrote all but the lines it left to Python; Python wrote the others.
    assert stored["engine"]["by_engine"] == fast["imported"] - 3
    assert stored["no-engine"]["by_engine"] == 0
    rows = {r["path"]: r for r in stored["engine"]["rows"]}
    assert rows["/a/123"]["properties"] == '{"vhost":"example.com"}'
    assert rows["/a/123"]["user_id"] == "alice"
    assert rows["/a/123"]["latency_ms"] == 250.0
    assert rows["/b"]["latency_ms"] == 1.5
    assert rows["/c/abcdef0123456789"]["client_ip"] == "2001:db8::"
    assert rows["/d/e@x.org"]["client_ip"] == ""
    assert rows["/d/e@x.org"]["user_agent"] == "ü" * 512
    assert rows["/e/5"]["route"] == "/e/:id"
    # Every imported event is in the rollups, in the hour and on the day it happened.
    for mode in ("engine", "no-engine"):
        assert stored[mode]["rollup"] == stored[mode]["raw"]
        assert stored[mode]["days"][0]["n"] == fast["imported"]

    # Re-importing through the other path finds every line already there.
    again = run(
        "import", str(log), "--org", "parity", "--data-dir", str(tmp_path / "no-engine"),
        "--format", "combined", "--engine", "--json", "--no-progress",
    )  # fmt: skip
    assert again["imported"] == 0
    assert again["duplicates"] == fast["imported"]
    assert again["bad"] == fast["bad"]
