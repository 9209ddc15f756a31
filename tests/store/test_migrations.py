"""Schema migrations carry a store's existing rows forward.

chDB allows one embedded store per process and the suite's store is already open, so the
scenarios run in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from meterline.errors import StoreError
from meterline.store import (
    LATENCY_QUANTILES,
    ROLLUP_WIDTHS,
    RollupWidth,
    Store,
    map_quantile,
    rollup_table,
    store_from_url,
)
from meterline.store import base as store_base
from tests.store.test_contract import count, org, rows_for

ROOT = Path(__file__).resolve().parents[2]

V2_LEVELS = {
    "totals": ("minute", "tenminute", "hour", "day"),
    "routes": ("minute", "tenminute", "hour", "day"),
    "consumers": ("hour", "day"),
    "full": ("hour", "day"),
}
"""The rollup tables of schema version 2: ``rollup_<width>_<level>``."""

V4_WIDTHS = tuple(w for w in ROLLUP_WIDTHS if w.name in V2_LEVELS)
"""The widths of schema versions 2 to 4 (version 5 adds endpoints)."""


def tables(store: Store) -> set[str]:
    rows = store.select(
        "SELECT name FROM system.tables WHERE database = {d:String}", {"d": store.database}
    )
    return {r["name"] for r in rows}


def upgrade_from_version_1(path: str) -> None:
    """Build a version-1 store with rows, migrate it, and check every rollup kept them."""
    store = store_from_url(f"chdb://{path}")
    try:
        newest = store_base.MIGRATIONS
        store_base.MIGRATIONS = newest[:1]
        assert store.migrate() == [1]
        o = org()
        store.insert_rows(rows_for(o, 40))
        assert not store.select(
            "SELECT name FROM system.tables WHERE database = 'meterline' "
            "AND name LIKE '%tenminute%'"
        )
        store_base.MIGRATIONS = newest[:2]

        assert store.migrate() == [2]

        for width, levels in V2_LEVELS.items():
            for level in levels:
                table = f"rollup_{width}_{level}"
                assert count(store, table, o, "sum(requests)") == 40, table
                ddl = store.select(
                    "SELECT create_table_query AS q FROM system.tables "
                    "WHERE database = 'meterline' AND name = {t:String}",
                    {"t": table},
                )[0]["q"]
                assert "index_granularity = 256" in ddl, table
        # The views were rebuilt: new rows reach every level, ten-minute included.
        store.insert_rows(rows_for(o, 5))
        assert count(store, "rollup_totals_tenminute", o, "sum(requests)") == 45
        assert count(store, "rollup_routes_day", o, "sum(requests)") == 45
        assert store.migrate() == []
    finally:
        store.close()


def test_version_2_keeps_rows_adds_ten_minute_rollups_and_small_granules(tmp_path: Path) -> None:
    run_in_fresh_process("upgrade_from_version_1", tmp_path)


def level_counts(
    store: Store, o: str, widths: tuple[RollupWidth, ...] = ROLLUP_WIDTHS
) -> dict[tuple[str, str], int]:
    """``sum(requests)`` of ``o`` per (width, level) in the rollup tables of ``widths``."""
    out = {}
    for width in widths:
        for row in store.select(
            f"SELECT toString(level) AS level, sum(requests) AS n "
            f"FROM {{db}}.{rollup_table(width.name)} WHERE org_id = {{o:String}} GROUP BY level",
            {"o": o},
        ):
            out[(width.name, row["level"])] = int(row["n"])
    return out


def schema(store: Store, database: str | None = None) -> dict[str, str]:
    """Every table and view of ``database`` (the store's own by default) as created."""
    name = database or store.database
    rows = store.select(
        "SELECT name, create_table_query AS q FROM system.tables WHERE database = {d:String} "
        "AND name != 'schema_migrations'",
        {"d": name},
    )
    return {r["name"]: r["q"].replace(f"{name}.", "{db}.") for r in rows}


def failing_once(store: Store, marker: str, nth: int = 1) -> None:
    """Make ``store`` fail the ``nth`` statement containing ``marker`` (a crash there)."""
    real = store.command
    seen = 0

    def command(sql: str, params: Any = None) -> None:
        nonlocal seen
        if marker in sql:
            seen += 1
            if seen == nth:
                raise StoreError("interrupted")
        real(sql, params)

    store.command = command  # type: ignore[method-assign]


def migrate_after_crash(store: Store, interruption: tuple[str, int] | None) -> list[int]:
    """Migrate ``store`` once failing at ``interruption`` (when given), then again: the
    versions the second, completing run applied."""
    if interruption is not None:
        real = store.command
        failing_once(store, *interruption)
        try:
            store.migrate()
        except StoreError:
            pass
        else:
            raise AssertionError(f"{interruption} never happened")
        finally:
            store.command = real  # type: ignore[method-assign]
    return store.migrate()


def upgrade_from_version_2(path: str) -> None:
    """Version-2 stores migrate to one table per width; interrupted runs resume."""
    store = store_from_url(f"chdb://{path}")
    newest = store_base.MIGRATIONS
    real_command = store.command
    # (where the first run stops, which occurrence) — None runs straight through.
    interruptions: list[tuple[str, int] | None] = [
        None,
        ("INSERT INTO", 2),  # mid-copy: one level of the first width copied aside
        ("EXCHANGE TABLES", 2),  # one width swapped in, the next not yet
        ("DROP TABLE IF EXISTS {db}.rollup_routes_", 3),  # some old tables dropped
        ("rollup_totals_stage_mv", 1),  # rows moved, views half created
    ]
    try:
        for case, interruption in enumerate(interruptions):
            store.database = f"upgrade{case}"
            store.command = real_command  # type: ignore[method-assign]
            store_base.MIGRATIONS = newest[:2]
            assert store.migrate() == [1, 2]
            o = org()
            store.insert_rows(rows_for(o, 40))
            store.insert_rows(rows_for(o, 7, consumer_id="c-7"))
            store_base.MIGRATIONS = newest[:3]
            assert migrate_after_crash(store, interruption) == [3], interruption

            expected = {(w.name, level): 47 for w in V4_WIDTHS for level in w.granularities}
            assert level_counts(store, o, V4_WIDTHS) == expected, interruption
            consumers = store.select(
                f"SELECT level, uniqExactMerge(consumers) AS n "
                f"FROM {{db}}.{rollup_table('consumers')} WHERE consumer_id = 'c-7' "
                "GROUP BY level",
                {},
            )
            assert {r["n"] for r in consumers} == {1}, interruption
            left = tables(store)
            old = {f"rollup_{w}_{lv}" for w, levels in V2_LEVELS.items() for lv in levels}
            assert not left & old, (interruption, left & old)
            assert not left & {f"{name}_mv" for name in old}, interruption
            assert not any(name.endswith("__next") for name in left), interruption
            # New rows flow through the new views into every level, counted once.
            store.insert_rows(rows_for(o, 3))
            assert level_counts(store, o, V4_WIDTHS) == dict.fromkeys(expected, 50), interruption
            assert store.migrate() == []

    finally:
        store_base.MIGRATIONS = newest
        store.close()


def quantiles_by_level(store: Store, o: str, width: str, sketch: str) -> dict[Any, Any]:
    """Latency quantiles of ``o`` per (level, bucket) of ``width``'s rollups, computed by
    ``sketch`` (SQL over the table's rows)."""
    rows = store.select(
        f"SELECT toString(level) AS level, toString(bucket) AS bucket, {sketch} AS q "
        f"FROM {{db}}.{rollup_table(width)} WHERE org_id = {{o:String}} AND type = 'request' "
        "GROUP BY level, bucket",
        {"o": o},
    )
    return {(r["level"], r["bucket"]): r["q"] for r in rows}


def upgrade_from_version_3(path: str) -> None:
    """Version 4 rebuilds the rollups from raw events with latency bin maps, whatever
    statement an interrupted run stopped at; percentiles and counts are unchanged."""
    store = store_from_url(f"chdb://{path}")
    newest = store_base.MIGRATIONS
    real_command = store.command
    interruptions: list[tuple[str, int] | None] = [
        None,
        ("INSERT INTO", 2),  # mid-rebuild of the second width
        ("EXCHANGE TABLES", 3),  # two widths swapped in, the others not yet
        ("rollup_totals_stage_mv", 1),  # tables rebuilt, views half created
    ]
    try:
        for case, interruption in enumerate(interruptions):
            store.database = f"upgrade{case}"
            store.command = real_command  # type: ignore[method-assign]
            store_base.MIGRATIONS = newest[:3]
            assert store.migrate() == [1, 2, 3]
            o = org()
            store.insert_rows(rows_for(o, 40))
            store.insert_rows(rows_for(o, 7, consumer_id="c-7", latency_ms=0))
            before = {
                w.name: quantiles_by_level(
                    store, o, w.name, "quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(latency_q)"
                )
                for w in V4_WIDTHS
            }
            store_base.MIGRATIONS = newest[:4]
            assert migrate_after_crash(store, interruption) == [4], interruption

            expected = {(w.name, level): 47 for w in V4_WIDTHS for level in w.granularities}
            assert level_counts(store, o, V4_WIDTHS) == expected, interruption
            after = {
                w.name: quantiles_by_level(
                    store,
                    o,
                    w.name,
                    "["
                    + ", ".join(map_quantile("sumMap(latency_bins)", q) for q in LATENCY_QUANTILES)
                    + "]",
                )
                for w in V4_WIDTHS
            }
            assert after == before, interruption
            zeros = store.select(
                f"SELECT toString(level) AS level, sum(latency_bins[toInt32(-2147483648)]) AS n "
                f"FROM {{db}}.{rollup_table('totals')} WHERE org_id = {{o:String}} GROUP BY level",
                {"o": o},
            )
            assert {r["n"] for r in zeros} == {7}, zeros  # 0 ms latencies: the zero bin
            left = tables(store)
            assert not any(name.endswith("__next") for name in left), interruption
            store.insert_rows(rows_for(o, 3))
            assert level_counts(store, o, V4_WIDTHS) == dict.fromkeys(expected, 50), interruption
            assert store.migrate() == []
    finally:
        store_base.MIGRATIONS = newest
        store.close()


def upgrade_from_version_4(path: str) -> None:
    """Version 5 fills the endpoints rollups from the routes rollups, whatever statement
    an interrupted run stopped at, and compresses latency bins with T64; an empty store
    gets the same schema at once."""
    store = store_from_url(f"chdb://{path}")
    newest = store_base.MIGRATIONS
    real_command = store.command
    interruptions: list[tuple[str, int] | None] = [
        None,
        ("MODIFY COLUMN latency_bins", 3),  # two tables recompressed, the others not yet
        ("INSERT INTO", 1),  # mid-fill of the endpoints table
        ("RENAME TABLE", 1),  # filled aside, not yet in place
        ("rollup_endpoints_stage_mv", 1),  # table in place, views half created
    ]
    endpoint_rows = (
        "SELECT toString(level) AS level, toString(bucket) AS bucket, route, method, "
        "sum(requests) AS n, sum(server_errors) AS e, sum(latency_sum) AS s, "
        "toString(sumMap(latency_bins)) AS bins, uniqExactMerge(consumers) AS c "
        "FROM {db}.%s WHERE org_id = {o:String} "
        "GROUP BY level, bucket, route, method ORDER BY level, bucket, route, method"
    )
    try:
        for case, interruption in enumerate(interruptions):
            store.database = f"upgrade{case}"
            store.command = real_command  # type: ignore[method-assign]
            store_base.MIGRATIONS = newest[:4]
            assert store.migrate() == [1, 2, 3, 4]
            o = org()
            store.insert_rows(rows_for(o, 40))
            store.insert_rows(rows_for(o, 7, consumer_id="c-7", status=503, latency_ms=0))
            store_base.MIGRATIONS = newest
            assert migrate_after_crash(store, interruption) == [5], interruption

            expected = {(w.name, level): 47 for w in ROLLUP_WIDTHS for level in w.granularities}
            assert level_counts(store, o) == expected, interruption
            by_routes = store.select(endpoint_rows % rollup_table("routes"), {"o": o})
            assert store.select(endpoint_rows % rollup_table("endpoints"), {"o": o}) == by_routes
            assert sum(r["e"] for r in by_routes) == 4 * 7  # four levels of seven 503s
            ddl = schema(store)
            for width in ROLLUP_WIDTHS:
                assert "CODEC(T64)" in ddl[rollup_table(width.name)], (interruption, width)
            assert not any(name.endswith("__next") for name in ddl), interruption
            store.insert_rows(rows_for(o, 3))
            assert level_counts(store, o) == dict.fromkeys(expected, 50), interruption
            assert store.migrate() == []

        # An empty store gets the newest schema at once: the same tables and views.
        store.database = "fresh"
        assert store.migrate() == [1, 2, 3, 4, 5]
        assert schema(store) == schema(store, "upgrade0")
        o = org()
        store.insert_rows(rows_for(o, 4))
        assert set(level_counts(store, o).values()) == {4}
        assert store.migrate() == []
    finally:
        store_base.MIGRATIONS = newest
        store.close()


def test_version_3_moves_every_level_into_one_table_per_width(tmp_path: Path) -> None:
    run_in_fresh_process("upgrade_from_version_2", tmp_path)


def test_version_4_rebuilds_rollups_with_latency_bins(tmp_path: Path) -> None:
    run_in_fresh_process("upgrade_from_version_3", tmp_path)


def test_version_5_adds_endpoint_rollups_and_compresses_latency_bins(tmp_path: Path) -> None:
    run_in_fresh_process("upgrade_from_version_4", tmp_path)


def run_in_fresh_process(scenario: str, tmp_path: Path) -> None:
    script = (
        f"from tests.store.test_migrations import {scenario}; "
        f"{scenario}({str(tmp_path / 'store')!r}); print('upgraded')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "upgraded" in done.stdout
