"""Access-log import throughput: ``meterline import`` end to end beside GoAccess, one run.

The real log in ``shared/datasets/access-logs/`` is repeated to about a million lines,
each copy's timestamps shifted by a week so no line repeats. Both tools read the same
file: ``meterline import`` parses and stores it (embedded chDB store, durable on return;
the engine parses Common/Combined files itself, see ``meterline.logs.engine``);
GoAccess (Debian package ``goaccess``) parses it into a JSON report. Prints lines/s for
each and the ratio, and the CPU seconds each used (a steadier figure on a busy machine;
GoAccess uses one core, the engine up to all).

Run: ``.venv/bin/python bench/import_logs.py [--lines 1000000]``
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    goaccess = shutil.which("goaccess")
    meterline = str(Path(sys.executable).with_name("meterline"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log = work / "access.log"
        count = build(log, args.lines)
        size_mb = log.stat().st_size / 1e6
        print(f"{count:,} lines, {size_mb:.0f} MB (from {DATASET.name})")
        data = work / "data"
        timed([meterline, "admin", "create-org", "bench", "--data-dir", str(data)])
        ours, out, ours_cpu = timed(
            [meterline, "import", str(log), "--org", "bench", "--data-dir", str(data)]
            + ["--no-progress", "--json"]
        )
        summary = json.loads(out.strip().splitlines()[-1])
        print(
            f"meterline import: {ours:6.1f} s  {count / ours:>9,.0f} lines/s  "
            f"(CPU {ours_cpu:.1f} s; {summary['imported']:,} stored, {summary['bad']:,} bad lines)"
        )
        if goaccess is None:
            print("goaccess is not installed (apt-get install goaccess); no baseline")
            return
        theirs, _, theirs_cpu = timed(
            [goaccess, str(log), "--log-format=COMBINED", "--no-global-config"]
            + ["-o", str(work / "report.json")]
        )
        print(
            f"goaccess:         {theirs:6.1f} s  {count / theirs:>9,.0f} lines/s  "
            f"(CPU {theirs_cpu:.1f} s)"
        )
        print(f"meterline / goaccess throughput: {theirs / ours:.2f}x")
        print(f"meterline / goaccess CPU per line: {ours_cpu / theirs_cpu:.2f}x")


if __name__ == "__main__":
    main()
