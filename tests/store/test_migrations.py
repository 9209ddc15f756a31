"""Schema migrations carry a store's existing rows forward.

chDB allows one embedded store per process and the suite's store is already open, so the
scenario runs in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from meterline.store import ROLLUP_WIDTHS, rollup_table, store_from_url
from meterline.store import base as store_base
from tests.store.test_contract import count, org, rows_for

ROOT = Path(__file__).resolve().parents[2]


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
        store_base.MIGRATIONS = newest

        assert store.migrate() == [2]

        for width in ROLLUP_WIDTHS:
            for level in width.granularities:
                table = rollup_table(width.name, level)
                assert count(store, table, o, "sum(requests)") == 40, table
                ddl = store.select(
                    "SELECT create_table_query AS q FROM system.tables "
                    "WHERE database = 'meterline' AND name = {t:String}",
                    {"t": table},
                )[0]["q"]
                assert "index_granularity = 256" in ddl, table
        # The views were rebuilt: new rows reach every level, ten-minute included.
        store.insert_rows(rows_for(o, 5))
        assert count(store, rollup_table("totals", "tenminute"), o, "sum(requests)") == 45
        assert count(store, rollup_table("routes", "day"), o, "sum(requests)") == 45
        assert store.migrate() == []
    finally:
        store.close()


def test_version_2_keeps_rows_adds_ten_minute_rollups_and_small_granules(tmp_path: Path) -> None:
    script = (
        "from tests.store.test_migrations import upgrade_from_version_1; "
        f"upgrade_from_version_1({str(tmp_path / 'store')!r}); print('upgraded')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "upgraded" in done.stdout
