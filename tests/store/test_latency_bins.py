"""Rollups' latency bin maps answer exactly what the engine's quantilesDD answers."""

from __future__ import annotations

import random
from collections.abc import Callable

from meterline.store import LATENCY_BIN_SQL, LATENCY_QUANTILES, Store, bins_quantile, map_quantile


def each_level(quantile: Callable[[float], str]) -> str:
    """An array of ``quantile`` at every level of :data:`LATENCY_QUANTILES`."""
    return f"[{', '.join(quantile(level) for level in LATENCY_QUANTILES)}]"


JOINED = ("groupArrayArray(mapKeys(half))", "groupArrayArray(mapValues(half))")
"""The bins of several rows joined unmerged, as a time series reads them."""


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
        halves = chdb_store.select(
            f"SELECT {each_level(lambda level: bins_quantile(*JOINED, level))} AS q FROM ("
            f"  SELECT sumMap(map({LATENCY_BIN_SQL}, toUInt64(1))) AS half"
            f"  FROM {values_sql} GROUP BY latency_ms < 50)"
        )
        assert halves[0]["q"] == direct[0]["q"], (trial, values)
        merged = chdb_store.select(
            f"SELECT {each_level(lambda level: map_quantile('sumMap(half)', level))} AS q FROM ("
            f"  SELECT sumMap(map({LATENCY_BIN_SQL}, toUInt64(1))) AS half"
            f"  FROM {values_sql} GROUP BY latency_ms < 50)"
        )
        assert merged[0]["q"] == direct[0]["q"], (trial, values)


def test_no_latencies_give_no_quantiles(chdb_store: Store) -> None:
    for binned in (
        each_level(lambda level: bins_quantile(*JOINED, level)),
        each_level(lambda level: map_quantile("sumMap(half)", level)),
    ):
        rows = chdb_store.select(
            f"SELECT {binned} AS binned, quantilesDD(0.01, 0.5, 0.95, 0.99)(x) AS direct FROM ("
            "  SELECT map(toInt32(1), toUInt64(1)) AS half, 1.0 AS x WHERE 0)"
        )
        assert rows[0]["binned"] == rows[0]["direct"] == [None, None, None]
