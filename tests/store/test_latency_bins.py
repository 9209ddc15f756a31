"""Rollups' latency bin maps answer exactly what the engine's quantilesDD answers."""

from __future__ import annotations

import random

from meterline.store import LATENCY_BIN_SQL, Store, bins_quantiles, map_quantiles


def test_bin_maps_give_the_quantiles_of_quantiles_dd(chdb_store: Store) -> None:
    rng = random.Random(11)
    for trial in range(30):
        values = [
            round(rng.lognormvariate(rng.uniform(-2, 6), 1.5), rng.choice([0, 1, 3]))
            for _ in range(rng.randint(1, 500))
        ]
        values += [0.0] * (trial % 5) + [1e-310] * (trial % 2) + [1e12] * (trial % 3)
        literal = ", ".join(repr(float(v)) for v in values)
        values_sql = f"(SELECT arrayJoin([{literal}]) AS latency_ms)"
        direct = chdb_store.select(
            f"SELECT quantilesDD(0.01, 0.5, 0.95, 0.99)(latency_ms) AS q FROM {values_sql}"
        )
        # Binned in two halves, as rollup rows are, and read without merging them.
        bins = ("groupArrayArray(mapKeys(half))", "groupArrayArray(mapValues(half))")
        halves = chdb_store.select(
            f"SELECT {bins_quantiles(*bins)} AS q FROM ("
            f"  SELECT sumMap(map({LATENCY_BIN_SQL}, toUInt64(1))) AS half"
            f"  FROM {values_sql} GROUP BY latency_ms < 50)"
        )
        assert halves[0]["q"] == direct[0]["q"], (trial, values)
        merged = chdb_store.select(
            f"SELECT {map_quantiles('sumMap(half)')} AS q FROM ("
            f"  SELECT sumMap(map({LATENCY_BIN_SQL}, toUInt64(1))) AS half"
            f"  FROM {values_sql} GROUP BY latency_ms < 50)"
        )
        assert merged[0]["q"] == direct[0]["q"], (trial, values)


def test_no_latencies_give_no_quantiles(chdb_store: Store) -> None:
    for binned in (
        bins_quantiles("groupArrayArray(mapKeys(half))", "groupArrayArray(mapValues(half))"),
        map_quantiles("sumMap(half)"),
    ):
        rows = chdb_store.select(
            f"SELECT {binned} AS binned, quantilesDD(0.01, 0.5, 0.95, 0.99)(x) AS direct FROM ("
            "  SELECT map(toInt32(1), toUInt64(1)) AS half, 1.0 AS x WHERE 0)"
        )
        assert rows[0]["binned"] == rows[0]["direct"] == [None, None, None]
