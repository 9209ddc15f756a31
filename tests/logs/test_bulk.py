"""A bulk load (:mod:`meterline.logs.bulk`) stores what an insert through the rollup views
stores: the same events and, at every width and level, the same rollup rows (the same
sums, extremes, percentiles and distinct counts, and byte for byte the same empty
states). An import interrupted before its load was complete leaves nothing; one
interrupted while moving its load in is completed by the next import; neither counts
an event twice, and a re-import afterwards finds everything stored."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from meterline.events import RouteNormaliser
from meterline.logs import bulk
from meterline.logs.engine import EngineImport, EngineResult
from meterline.store import Store
from meterline.store.chdb import ChdbStore
from meterline.store.schema import AGGREGATE_COLUMNS, ROLLUP_WIDTHS, rollup_table
from tests.helpers import ServerProcess, make_tenant

START = datetime(2021, 1, 30, 22, 0, tzinfo=UTC)
ROUTES = ["/", "/api/items", "/api/items/42", "/api/users/7", "/static/app.js", "/login"]


def write_log(path: Path, lines: int, *, timed: bool, seed: int = 3) -> int:
    """A log over several months (returned): bursts and sparse stretches.
    Response times, when ``timed``, are binary fractions of a second, so every sum of
    them is exact whatever the order it is taken in."""
    rng = random.Random(seed)
    out = []
    months = set()
    at = START
    for _ in range(lines):
        at += timedelta(seconds=rng.choice([0, 1, 2, 5, 60, 3600, 86400]))
        months.add((at.year, at.month))
        stamp = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
        route = rng.choice(ROUTES)
        status = rng.choice([200, 200, 200, 301, 404, 500])
        method = rng.choice(["GET", "GET", "POST"])
        line = f'203.0.113.{rng.randint(1, 9)} - - [{stamp}] "{method} {route} HTTP/1.1" {status} '
        line += f'{rng.randint(0, 5000)} "-" "agent/{rng.randint(1, 3)}"'
        if timed and rng.random() < 0.7:
            line += f" {rng.choice(['0.5', '0.25', '0.125', '1.0625', '3.75'])}"
        out.append(line)
    path.write_text("\n".join(out) + "\n")
    return len(months)


def run(store: Store, org: str, log: Path, bulk_from: int | None) -> EngineResult:
    assert isinstance(store, ChdbStore)
    result = EngineImport(store, org, 30, RouteNormaliser(), bulk_from=bulk_from).run(str(log))
    assert result is not None
    return result


def rollups(store: Store, org: str) -> dict[str, list[dict[str, Any]]]:
    """Every rollup row of ``org``, equal keys merged, states finalised."""
    merged = {
        name: (
            f"uniqExactMerge({name})"
            if name == "consumers"
            else f"{ctype.split('(')[1].split(',')[0]}({name})"
        )
        for name, (ctype, _) in AGGREGATE_COLUMNS.items()
    }
    found = {}
    for width in ROLLUP_WIDTHS:
        key = ", ".join(("level", "bucket", *width.dimensions))
        aggs = ", ".join(
            f"{expr} AS {name}" for name, expr in merged.items() if name != "received_at"
        )
        found[width.name] = store.select(
            f"SELECT {key}, {aggs} FROM {{db}}.{rollup_table(width.name)} "
            f"WHERE org_id = {{org:String}} GROUP BY {key} ORDER BY {key}",
            {"org": org},
        )
    return found


def events(store: Store, org: str) -> list[dict[str, Any]]:
    return store.select(
        "SELECT * EXCEPT (org_id, received_at) FROM {db}.events WHERE org_id = {org:String} "
        "ORDER BY event_id",
        {"org": org},
    )


def scratch_tables(store: Store) -> list[str]:
    rows = store.select(
        "SELECT name FROM system.tables "
        "WHERE database = {d:String} AND startsWith(name, 'import_')",
        {"d": store.database},
    )
    return [str(r["name"]) for r in rows]


def consistent(store: Store, org: str) -> None:
    """Every width and level of ``org``'s rollups counts each stored event once."""
    raw = store.select(
        "SELECT count() AS n FROM {db}.events WHERE org_id = {org:String}", {"org": org}
    )[0]["n"]
    for width in ROLLUP_WIDTHS:
        counted = store.select(
            f"SELECT level, sum(requests) AS n FROM {{db}}.{rollup_table(width.name)} "
            "WHERE org_id = {org:String} GROUP BY level",
            {"org": org},
        )
        assert {str(r["level"]): int(r["n"]) for r in counted} == dict.fromkeys(
            width.granularities, raw
        )


@pytest.mark.parametrize("timed", [True, False], ids=["response-times", "no-response-times"])
def test_a_bulk_load_stores_what_the_views_store(
    chdb_store: Store, tmp_path: Path, timed: bool
) -> None:
    log = tmp_path / "access.log"
    write_log(log, 3000, timed=timed)
    suffix = "timed" if timed else "untimed"
    fast = run(chdb_store, f"org_bulk_{suffix}", log, 0)
    slow = run(chdb_store, f"org_views_{suffix}", log, None)
    assert (fast.imported, fast.duplicates) == (slow.imported, slow.duplicates) == (3000, 0)
    assert events(chdb_store, f"org_bulk_{suffix}") == events(chdb_store, f"org_views_{suffix}")
    built = rollups(chdb_store, f"org_bulk_{suffix}")
    assert built == rollups(chdb_store, f"org_views_{suffix}")
    assert all(built[width.name] for width in ROLLUP_WIDTHS)
    consistent(chdb_store, f"org_bulk_{suffix}")
    assert scratch_tables(chdb_store) == []
    # Rows without any latency (all of them when the log has no response times) hold the
    # very empty bins and consumer state the views build, byte for byte.
    states = {}
    for org in (f"org_bulk_{suffix}", f"org_views_{suffix}"):
        states[org] = chdb_store.select(
            "SELECT DISTINCT toString(latency_bins) AS q, hex(toString(consumers)) AS c "
            "FROM {db}.rollup_routes WHERE org_id = {org:String} AND latency_count = 0 "
            "ORDER BY q, c",
            {"org": org},
        )
    assert states[f"org_bulk_{suffix}"] == states[f"org_views_{suffix}"]
    assert len(states[f"org_bulk_{suffix}"]) == 1


def test_a_re_import_of_a_bulk_load_counts_nothing_twice(chdb_store: Store, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write_log(log, 1500, timed=True, seed=5)
    first = run(chdb_store, "org_bulk_again", log, 0)
    again = run(chdb_store, "org_bulk_again", log, 0)
    assert (first.imported, first.duplicates) == (1500, 0)
    assert (again.imported, again.duplicates) == (0, 1500)
    consistent(chdb_store, "org_bulk_again")


class Interrupt(Exception):
    """Stands for the process dying at one statement."""


def fail_at(
    store: Store, monkeypatch: pytest.MonkeyPatch, marker: str, nth: int, *, crash: bool
) -> None:
    """Make the ``nth`` statement containing ``marker`` fail; with ``crash`` nothing is
    cleaned up afterwards either, as when the process is killed."""
    real = store.command
    seen = []

    def command(sql: str, params: Any = None) -> None:
        if marker in sql:
            seen.append(sql)
            if len(seen) == nth:
                raise Interrupt(marker)
        real(sql, params)

    monkeypatch.setattr(store, "command", command)
    if crash:
        monkeypatch.setattr(bulk, "discard", lambda store, token: None)


def interrupted_run(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    org: str,
    log: Path,
    marker: str,
    nth: int,
    *,
    crash: bool,
) -> None:
    """A bulk import of ``log`` interrupted at the ``nth`` statement containing ``marker``
    (see :func:`fail_at`); the store is left as the interruption left it."""
    fail_at(store, monkeypatch, marker, nth, crash=crash)
    with pytest.raises(Interrupt):
        run(store, org, log, 0)
    monkeypatch.undo()


@pytest.mark.parametrize("crash", [False, True], ids=["error", "killed"])
def test_an_import_interrupted_while_building_leaves_nothing(
    chdb_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: bool
) -> None:
    org = f"org_bulk_building_{crash}"
    log = tmp_path / "access.log"
    write_log(log, 1200, timed=True, seed=7)
    interrupted_run(chdb_store, monkeypatch, org, log, "_rollup_routes (org_id", 1, crash=crash)
    assert events(chdb_store, org) == []
    assert rollups(chdb_store, org) == {width.name: [] for width in ROLLUP_WIDTHS}
    assert bool(scratch_tables(chdb_store)) == crash

    result = run(chdb_store, org, log, 0)
    assert (result.imported, result.duplicates) == (1200, 0)
    assert scratch_tables(chdb_store) == []
    consistent(chdb_store, org)


@pytest.mark.parametrize("at", ["rollups", "events"])
def test_an_import_interrupted_while_moving_in_is_completed_once(
    chdb_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    org = f"org_bulk_moving_{at}"
    log = tmp_path / "access.log"
    months = write_log(log, 1200, timed=True, seed=11)
    assert months > 2
    # A move per month and table, the rollups' first and the events' last: fail in the
    # middle of the rollups, or at the events' last month.
    moves = months * (len(ROLLUP_WIDTHS) + 1)
    nth = months + 2 if at == "rollups" else moves
    interrupted_run(chdb_store, monkeypatch, org, log, "MOVE PARTITION", nth, crash=True)
    assert scratch_tables(chdb_store)

    result = run(chdb_store, org, log, 0)  # completes the first, then finds it all stored
    assert (result.imported, result.duplicates) == (0, 1200)
    assert scratch_tables(chdb_store) == []
    consistent(chdb_store, org)
    run(chdb_store, f"{org}_clean", log, 0)
    assert rollups(chdb_store, org) == rollups(chdb_store, f"{org}_clean")


def test_an_interrupted_load_is_completed_when_the_store_is_next_opened_for_import(
    chdb_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = "org_bulk_reopened"
    log = tmp_path / "access.log"
    write_log(log, 800, timed=False, seed=13)
    interrupted_run(chdb_store, monkeypatch, org, log, "MOVE PARTITION", 1, crash=True)
    assert events(chdb_store, org) == []
    assert bulk.finish_interrupted(chdb_store) == 1
    assert len(events(chdb_store, org)) == 800
    consistent(chdb_store, org)
    assert bulk.finish_interrupted(chdb_store) == 0


CRASH = """
import sys
from meterline.events import RouteNormaliser
from meterline.logs.engine import EngineImport
from meterline.store.chdb import ChdbStore
store = ChdbStore(sys.argv[1])
store.migrate()
real = store.command
def command(sql, params=None):
    if "MOVE PARTITION" in sql:
        raise SystemExit(3)  # the process ends in the middle of the move
    real(sql, params)
store.command = command
EngineImport(store, sys.argv[2], 30, RouteNormaliser(), bulk_from=0).run(sys.argv[3])
"""

CHECK = """
import sys
from meterline.store.chdb import ChdbStore
from tests.logs.test_bulk import consistent, events, scratch_tables
store = ChdbStore(sys.argv[1])
print(len(events(store, sys.argv[2])))
consistent(store, sys.argv[2])
print("consistent", "no-scratch" if not scratch_tables(store) else "scratch")
"""


def crash_while_moving(data: Path, org: str, log: Path) -> None:
    """Import ``log`` in a process that ends in the middle of its bulk load's move."""
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH, str(data / "store"), org, str(log)], capture_output=True
    )
    assert crashed.returncode == 3, crashed.stderr.decode()[-2000:]


def stored_after(data: Path, org: str) -> list[str]:
    """What another process finds in the store: events, consistency, scratch tables."""
    checked = subprocess.run(
        [sys.executable, "-c", CHECK, str(data / "store"), org], capture_output=True, timeout=300
    )
    assert checked.returncode == 0, checked.stderr.decode()[-2000:]
    return checked.stdout.decode().split()


def test_a_python_import_after_an_interrupted_load_counts_nothing_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    org = make_tenant(data, "crashed").org_id
    log = tmp_path / "access.log"
    write_log(log, 600, timed=True, seed=17)
    crash_while_moving(data, org, log)
    done = subprocess.run(
        [sys.executable, "-m", "meterline", "import", str(log), "--org", "crashed"]
        + ["--data-dir", str(data), "--no-engine", "--json", "--no-progress"],
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert (summary["imported"], summary["duplicates"]) == (0, 600)
    assert stored_after(data, org) == ["600", "consistent", "no-scratch"]


def test_a_server_start_completes_an_interrupted_load(tmp_path: Path) -> None:
    data = tmp_path / "data"
    org = make_tenant(data, "restarted").org_id
    log = tmp_path / "access.log"
    write_log(log, 500, timed=True, seed=19)
    crash_while_moving(data, org, log)
    server = ServerProcess(data)
    server.start()
    server.stop()
    assert stored_after(data, org) == ["500", "consistent", "no-scratch"]


def test_a_bulk_load_reports_its_rollup_building(chdb_store: Store, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write_log(log, 300, timed=True, seed=23)
    calls: list[tuple[int, int, int]] = []
    engine = EngineImport(chdb_store, "org_bulk_progress", 30, RouteNormaliser(), bulk_from=0)
    result = engine.run(str(log), lambda *call: calls.append(call))
    assert result is not None and result.imported == 300
    phases = [phase for phase, _, _ in calls]
    assert phases == sorted(phases) and {0, 1, 2} <= set(phases)
    widths = len(ROLLUP_WIDTHS)
    assert [call for call in calls if call[0] == 2] == [
        (2, n, widths) for n in range(1, widths + 1)
    ]
