"""Recent error events: newest first, filtered by the vocabulary, one org only."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from meterline.errors import ValidationError
from meterline.query import EventQuery, Filter, QueryService, compile_events, presets, resolve_range
from meterline.store import Store
from tests.helpers import event_row


def _rows(org: str, specs: list[dict[str, Any]]) -> list[list[Any]]:
    now_ms = int(time.time() * 1000)
    out = []
    for i, spec in enumerate(specs):
        row = event_row(
            org,
            now_ms,
            event_id=f"{org}-{i}",
            timestamp=now_ms - (len(specs) - i) * 1000,
            method="GET",
            latency_ms=5 + i,
            **spec,
        )
        out.append(row)
    return out


def test_recent_errors_are_newest_first_filtered_and_scoped(chdb_store: Store) -> None:
    org, other = f"org_{uuid.uuid4().hex[:8]}", f"org_{uuid.uuid4().hex[:8]}"
    chdb_store.insert_rows(
        _rows(
            org,
            [
                {"route": "/a", "status": 200, "consumer_id": "c1"},
                {"route": "/a", "status": 404, "consumer_id": "c1", "region": "DE"},
                {"route": "/b", "status": 503, "consumer_id": "c2", "error": "upstream down"},
                {"route": "/a", "status": 500, "consumer_id": "c2"},
                {"route": "/a", "status": 302, "consumer_id": "c1"},
            ],
        )
    )
    chdb_store.insert_rows(_rows(other, [{"route": "/a", "status": 500, "consumer_id": "c1"}]))
    service = QueryService(chdb_store)
    tr = resolve_range(range_="1h", start=None, end=None, now=datetime.now(UTC))

    found = presets.recent_errors(service, org, tr, ())["data"]
    assert [e["status"] for e in found] == [500, 503, 404]
    assert found[1]["error"] == "upstream down" and found[1]["route"] == "/b"
    assert found[2]["region"] == "DE" and found[2]["timestamp"].endswith("Z")
    assert set(found[0]) == {
        "timestamp",
        "event_id",
        "method",
        "route",
        "path",
        "status",
        "latency_ms",
        "consumer_id",
        "region",
        "error",
    }

    on_a = presets.recent_errors(service, org, tr, (Filter("route", "eq", "/a"),))["data"]
    assert [e["status"] for e in on_a] == [500, 404]
    of_c2 = presets.recent_errors(service, org, tr, (Filter("consumer_id", "eq", "c2"),), 1)
    assert [e["status"] for e in of_c2["data"]] == [500]
    assert presets.recent_errors(service, f"org_{uuid.uuid4().hex[:8]}", tr, ())["data"] == []


def test_event_query_binds_every_value() -> None:
    tr = resolve_range(range_="1h", start=None, end=None, now=datetime.now(UTC))
    hostile = "x' OR 1=1 --"
    compiled = compile_events(
        EventQuery(tr, (Filter("route", "in", (hostile,)),), limit=10), "o'; DROP TABLE x"
    )
    assert hostile not in compiled.sql and "DROP" not in compiled.sql
    assert "LIMIT 10" in compiled.sql and "ORDER BY timestamp DESC" in compiled.sql
    with pytest.raises(ValidationError):
        EventQuery(tr, limit=0)
