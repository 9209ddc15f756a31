"""Access-log import throughput: ``meterline import`` end to end beside GoAccess, one run.

The real log in ``shared/datasets/access-logs/`` is repeated to about a million lines,
each copy's timestamps shifted by a week so no line repeats. Both tools read the same
file: ``meterline import`` parses and stores it (embedded chDB store, durable on return;
the engine parses Common/Combined files itself, see ``meterline.logs.engine``);
GoAccess (Debian package ``goaccess``; 1.7 parses on one thread, it has no option for
more) parses it into a JSON report. Each run imports into a fresh data directory and
then runs GoAccess, so every ratio compares figures taken moments apart; prints lines/s
for each, the ratio, and the CPU seconds each used (a steadier figure on a busy machine;
GoAccess uses one core, the import both).

``--split`` adds diagnostic imports in the same run, altered for measurement only: one
through the rollup views (the insert files below ``BULK_FROM`` lines take, see
``meterline.logs.engine``) instead of a bulk load, one building no rollups, one where
the events table is also a Null engine (parsing only). Their CPU per line splits the
import into parse, events store and rollups, and compares the bulk load's rollups with
the views'.

Run: ``.venv/bin/python bench/import_logs.py [--lines 1000000] [--runs 3] [--split]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "access-logs" / "elastic-apache_logs.log"
_TIME = re.compile(r"\[([^\]]+)\]")


def build(target: Path, lines: int) -> int:
    """Write ``lines`` lines made of shifted copies of the dataset; returns the count."""
    source = DATASET.read_text(encoding="utf-8", errors="replace").splitlines()
    written = 0
    with target.open("w", encoding="utf-8") as out:
        copy = 0
        while written < lines:
            shift = timedelta(days=7 * copy)
            cache: dict[str, str] = {}
            chunk = []
            for line in source:
                if written + len(chunk) >= lines:
                    break
                match = _TIME.search(line)
                if match:
                    stamp = match.group(1)
                    new = cache.get(stamp)
                    if new is None:
                        parsed = datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z") + shift
                        new = parsed.strftime("%d/%b/%Y:%H:%M:%S %z")
                        cache[stamp] = new
                    line = line[: match.start(1)] + new + line[match.end(1) :]
                chunk.append(line)
            out.write("\n".join(chunk) + "\n")
            written += len(chunk)
            copy += 1
    return written


def timed(cmd: list[str]) -> tuple[float, str, float]:
    """Wall seconds, standard output and CPU seconds (user + system) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, done.stdout, cpu


ALTER = """
import sys
from meterline.store.chdb import ChdbStore
store = ChdbStore(sys.argv[1])
store.migrate()
for row in store.select(
    "SELECT name FROM system.tables WHERE database = '{db}' AND engine = 'MaterializedView'"
):
    store.command("DROP VIEW {db}." + row["name"])
if sys.argv[2] == "null":
    store.command("CREATE TABLE {db}.events_null AS {db}.events ENGINE = Null")
    store.command("EXCHANGE TABLES {db}.events AND {db}.events_null")
store.close()
"""
"""Drops the rollup views of a data directory's store; ``null`` also makes its events
table a Null engine (rows are parsed and thrown away)."""

IMPORT = """
import sys
from meterline.cli import main
from meterline.logs import bulk, engine
if sys.argv[1] == "views":  # every import through the rollup views
    init = engine.EngineImport.__init__
    def through_views(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "bulk_from": None})
    engine.EngineImport.__init__ = through_views
else:  # a bulk load building no rollups
    bulk.ROLLUP_WIDTHS = ()
sys.argv = ["meterline", *sys.argv[2:]]
main()
"""
"""``meterline import`` with the diagnostic change ``sys.argv[1]`` names."""


def import_once(
    meterline: str, log: Path, data: Path, alter: str = ""
) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds, CPU seconds and the summary of one import into a fresh data directory."""
    shutil.rmtree(data, ignore_errors=True)
    timed([meterline, "admin", "create-org", "bench", "--data-dir", str(data)])
    command = [meterline]
    if alter:
        if alter != "views":
            timed([sys.executable, "-c", ALTER, str(data / "store"), alter])
        command = [sys.executable, "-c", IMPORT, alter]
    wall, out, cpu = timed(
        [*command, "import", str(log), "--org", "bench", "--data-dir", str(data)]
        + ["--no-progress", "--json"]
    )
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return wall, cpu, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1, help="import + GoAccess pairs")
    parser.add_argument("--split", action="store_true", help="CPU per line by stage")
    args = parser.parse_args()
    goaccess = shutil.which("goaccess")
    meterline = str(Path(sys.executable).with_name("meterline"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log = work / "access.log"
        count = build(log, args.lines)
        size_mb = log.stat().st_size / 1e6
        print(f"{count:,} lines, {size_mb:.0f} MB (from {DATASET.name}), {os.cpu_count()} cores")
        ratios = []
        for run in range(1, args.runs + 1):
            ours, ours_cpu, summary = import_once(meterline, log, work / "data")
            print(
                f"run {run} meterline import: {ours:6.1f} s  {count / ours:>9,.0f} lines/s  "
                f"(CPU {ours_cpu:.1f} s, {ours_cpu / count * 1e6:.1f} µs/line; "
                f"{summary['imported']:,} stored, {summary['bad']:,} bad lines)"
            )
            if goaccess is None:
                print("goaccess is not installed (apt-get install goaccess); no baseline")
                continue
            theirs, _, theirs_cpu = timed(
                [goaccess, str(log), "--log-format=COMBINED", "--no-global-config"]
                + ["-o", str(work / "report.json")]
            )
            print(
                f"run {run} goaccess:         {theirs:6.1f} s  {count / theirs:>9,.0f} lines/s  "
                f"(CPU {theirs_cpu:.1f} s, {theirs_cpu / count * 1e6:.1f} µs/line)"
            )
            ratios.append((theirs / ours, ours_cpu / theirs_cpu))
            print(
                f"run {run} meterline / goaccess throughput: {theirs / ours:.2f}x, "
                f"CPU per line: {ours_cpu / theirs_cpu:.2f}x"
            )
        if len(ratios) > 1:
            print(
                f"median of {len(ratios)} runs: throughput "
                f"{statistics.median(r for r, _ in ratios):.2f}x, "
                f"CPU per line {statistics.median(c for _, c in ratios):.2f}x"
            )
        if args.split:
            cpu = {}
            modes = (
                ("full", ""),
                ("views", "views"),
                ("no rollups", "rollups"),
                ("parse only", "null"),
            )
            for name, alter in modes:
                wall, used, _ = import_once(meterline, log, work / f"data-{alter}", alter)
                cpu[name] = used / count * 1e6
                print(f"split {name:10s}: {wall:6.1f} s wall, {cpu[name]:5.1f} µs CPU/line")
            print(
                f"CPU per line: parse {cpu['parse only']:.1f} µs, "
                f"events store {cpu['no rollups'] - cpu['parse only']:.1f} µs, "
                f"rollups {cpu['full'] - cpu['no rollups']:.1f} µs "
                f"(through the views instead: {cpu['views'] - cpu['no rollups']:.1f} µs)"
            )


if __name__ == "__main__":
    main()
