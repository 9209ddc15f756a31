"""The engine's second read inserts exactly the lines its first read accepted: a log that
grows in between keeps its first lines (the new ones wait for the next import), and a log
replaced or rewritten in between is left to the Python importer with nothing written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meterline.events import RouteNormaliser
from meterline.logs.engine import EngineImport
from meterline.store import Store
from meterline.store.chdb import ChdbStore


def line(path: str, status: int = 200) -> str:
    return f'203.0.113.9 - - [10/Oct/2020:13:55:36 +0000] "GET {path} HTTP/1.1" {status} 12\n'


LOG = line("/first") + "not a log line\n" + "\n" + line("/second", 404) + line("/third")


def between_reads(
    store: Store, monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]
) -> None:
    """Run ``change`` once the engine's first read (the summary) has returned."""
    real = store.select

    def select(sql: str, params: Any = None) -> list[dict[str, Any]]:
        rows = real(sql, params)
        if "groupUniqArrayIf" in sql:
            change()
        return rows

    monkeypatch.setattr(store, "select", select)


def stored_paths(store: Store, org: str) -> list[str]:
    rows = store.select(
        "SELECT path FROM {db}.events WHERE org_id = {org:String} ORDER BY path", {"org": org}
    )
    return [str(r["path"]) for r in rows]


def run(store: Store, org: str, log: Path) -> Any:
    assert isinstance(store, ChdbStore)
    return EngineImport(store, org, 30, RouteNormaliser()).run(str(log))


def test_a_log_growing_between_reads_keeps_its_first_lines(
    chdb_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "access.log"
    log.write_text(LOG)

    def grow() -> None:
        with log.open("a") as handle:
            handle.write(line("/appended"))

    between_reads(chdb_store, monkeypatch, grow)
    result = run(chdb_store, "org_engine_grow", log)
    assert result is not None
    assert (result.lines, result.imported, result.duplicates) == (5, 3, 0)
    assert result.others == [(2, "not a log line")]
    monkeypatch.undo()
    assert stored_paths(chdb_store, "org_engine_grow") == ["/first", "/second", "/third"]


@pytest.mark.parametrize("how", ["in place", "replaced", "truncated"])
def test_a_log_rewritten_between_reads_is_left_to_python(
    chdb_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    log = tmp_path / "access.log"
    log.write_text(LOG)
    org = f"org_engine_{how.replace(' ', '_')}"

    def rewrite() -> None:
        if how == "in place":
            stat = log.stat()
            log.write_text(LOG.replace("/first", "/other"))
            os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        elif how == "replaced":
            other = tmp_path / "new.log"
            other.write_text(LOG + line("/new"))
            os.replace(other, log)
        else:
            log.write_text(line("/first"))

    between_reads(chdb_store, monkeypatch, rewrite)
    assert run(chdb_store, org, log) is None
    monkeypatch.undo()
    assert stored_paths(chdb_store, org) == []
