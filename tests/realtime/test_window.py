"""Live windows fed by Arrow batches hold exactly what row-by-row feeding holds."""

from __future__ import annotations

import math
import random
from typing import Any

from meterline.events import ROW_COLUMNS
from meterline.events.arrow import rows_to_batch
from meterline.realtime.sketch import LatencySketch
from meterline.realtime.window import Cell, LiveWindows, _plain_requests
from tests.helpers import event_row

NOW_MS = 1_790_000_000_000


def _rows(n: int, *, requests_only: bool = False, org: str | None = None) -> list[list[Any]]:
    rnd = random.Random(7)
    out = []
    for i in range(n):
        event = {
            "event_id": f"e{i}",
            "type": "request" if requests_only else rnd.choice(["request", "request", "llm"]),
            "timestamp": NOW_MS - rnd.randrange(5_000),
            "path": f"/orders/{rnd.randrange(5)}",
            "method": rnd.choice(["GET", "POST"]),
            "status": rnd.choice([200, 404, 503]),
            "latency_ms": rnd.choice([0, 0.0001, rnd.lognormvariate(3, 1.5)]),
            "consumer_id": f"c{rnd.randrange(4)}",
            "region": rnd.choice(["EU", "US", ""]),
            "model": "" if requests_only else "gpt-4o",
            "input_tokens": 0 if requests_only else rnd.randrange(100),
            "request_size": rnd.randrange(1000),
            "response_size": rnd.randrange(1000),
        }
        if rnd.random() < 0.2:
            del event["latency_ms"]
        out.append(event_row(org or rnd.choice(["org_a", "org_b"]), NOW_MS, **event))
    return out


def _state(windows: LiveWindows) -> dict[Any, Any]:
    def cell(c: Cell) -> tuple[Any, ...]:
        sketch: LatencySketch = c.sketch
        plain = {k: getattr(c, k) for k in Cell.__slots__ if k != "sketch"}  # type: ignore[attr-defined]
        return (tuple(sorted(plain.items())), sketch.bins, sketch.zero_count, sketch.count)

    return {
        (org, second, key): cell(c)
        for org, window in windows.orgs.items()
        for second, cells in window.seconds.items()
        for key, c in cells.items()
    }


def test_a_batch_folds_like_its_rows() -> None:
    rows = _rows(2_000)
    by_rows, by_batch = LiveWindows(), LiveWindows()
    by_rows.add_rows([list(r) for r in rows])
    by_batch.add_batch(rows_to_batch(rows))
    assert by_batch.rows_seen == by_rows.rows_seen == 2_000
    assert _state(by_batch) == _state(by_rows)
    # And the sketches are the ones LatencySketch.add builds, value by value.
    expected: dict[tuple[str, int], LatencySketch] = {}
    for r in rows:
        if r[2] == "request" and r[10] >= 0:
            expected.setdefault((r[0], r[3] // 1000), LatencySketch()).add(r[10])
    merged: dict[tuple[str, int], LatencySketch] = {}
    for org, window in by_batch.orgs.items():
        for second, cells in window.seconds.items():
            for c in cells.values():
                if c.sketch.count:
                    merged.setdefault((org, second), LatencySketch()).merge(c.sketch)
    assert {k: (s.bins, s.zero_count) for k, s in merged.items()} == {
        k: (s.bins, s.zero_count) for k, s in expected.items()
    }


def test_a_batch_of_plain_requests_folds_like_its_rows() -> None:
    rows = _rows(2_000, requests_only=True, org="org_a")
    batch = rows_to_batch(rows)
    assert _plain_requests(batch)  # the request-only fold, not the general one
    by_rows, by_batch = LiveWindows(), LiveWindows()
    by_rows.add_rows([list(r) for r in rows])
    by_batch.add_batch(batch)
    by_batch.add_batch(batch)  # and into cells that exist already
    by_rows.add_rows([list(r) for r in rows])
    assert by_batch.rows_seen == by_rows.rows_seen == 4_000
    assert _state(by_batch) == _state(by_rows)


def test_batches_the_request_fold_cannot_take_go_the_general_way() -> None:
    rows = _rows(50, requests_only=True, org="org_a")
    assert _plain_requests(rows_to_batch(rows))
    cost = ROW_COLUMNS.index("cost_usd")
    for change in (
        lambda r: r.__setitem__(0, "org_b"),  # a second org
        lambda r: r.__setitem__(cost, math.nan),  # the general fold adds NaN
        lambda r: r.__setitem__(ROW_COLUMNS.index("output_tokens"), 5),
        lambda r: r.__setitem__(ROW_COLUMNS.index("type"), "llm"),
    ):
        changed = [list(r) for r in rows]
        change(changed[-1])
        batch = rows_to_batch(changed)
        assert not _plain_requests(batch)
        by_rows, by_batch = LiveWindows(), LiveWindows()
        by_rows.add_rows(changed)
        by_batch.add_batch(batch)
        assert repr(_state(by_batch)) == repr(_state(by_rows))  # NaN != NaN, reprs match
