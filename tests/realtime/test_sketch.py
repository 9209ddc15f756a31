"""The live latency sketch answers what the store's quantilesDD answers."""

from __future__ import annotations

import random

from meterline.realtime import LatencySketch
from meterline.store import Store


def test_quantiles_equal_the_stores_quantiles_dd(chdb_store: Store) -> None:
    rng = random.Random(7)
    for trial in range(25):
        values = [
            round(rng.lognormvariate(3, 1.5), rng.choice([0, 1, 3]))
            for _ in range(rng.randint(1, 400))
        ]
        values += [0.0] * (trial % 4)
        halves = (LatencySketch(), LatencySketch())
        for i, value in enumerate(values):
            halves[i % 2].add(value)
        merged = LatencySketch()
        merged.merge(halves[0])
        merged.merge(halves[1])
        literal = ", ".join(repr(float(v)) for v in values)
        rows = chdb_store.select(
            "SELECT quantilesDD(0.01, 0.5, 0.95, 0.99)(x) AS q "
            f"FROM (SELECT arrayJoin([{literal}]) AS x)"
        )
        expected = [round(float(v), 3) for v in rows[0]["q"]]
        mine = [round(v, 3) for v in merged.quantiles((0.5, 0.95, 0.99)) if v is not None]
        assert mine == expected, (trial, values)


def test_empty_sketch_has_no_quantiles() -> None:
    assert LatencySketch().quantiles((0.5, 0.99)) == [None, None]
