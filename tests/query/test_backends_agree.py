"""The ClickHouse store answers every query exactly as the embedded one.

Both hold the same events; the ClickHouse store is reached through clickhouse-connect,
whose result decoding (native column types, not JSON text) the query service must turn
into the same answers: counts, rates, percentiles, times and series points. The client
runs on the embedded engine, and on a ClickHouse server when
``METERLINE_TEST_CLICKHOUSE_URL`` points at one.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meterline.query import MetricQuery, OrderBy, QueryService, TimeRange
from meterline.store import Store, store_from_url
from tests.backends import CLICKHOUSE_URL, through_client
from tests.helpers import event_row
from tests.query.test_plans_agree import QUERIES

# A server keeps what earlier runs stored: each run counts only its own org.
ORG = f"org_backends_agree_{uuid.uuid4().hex[:8]}"
NOW = datetime.fromtimestamp(time.time() // 60 * 60 + 60, tz=UTC)
THREE_DAYS = TimeRange(NOW - timedelta(days=3), NOW)

CASES: dict[str, MetricQuery] = {
    **QUERIES,
    "consumers 3d": MetricQuery(
        metrics=("requests", "errors", "error_rate", "bandwidth_bytes", "first_seen", "last_seen"),
        dimensions=("consumer_id",),
        time_range=THREE_DAYS,
        order_by=(OrderBy("requests", "desc"),),
        limit=10,
    ),
    "hour series 1d": MetricQuery(
        metrics=("requests", "latency_p95", "unique_consumers"),
        time_range=TimeRange(NOW - timedelta(days=1), NOW),
        granularity="hour",
    ),
    "llm by model 3d": MetricQuery(
        metrics=("llm_requests", "cost_usd", "tokens"),
        dimensions=("model",),
        time_range=THREE_DAYS,
    ),
}


@pytest.fixture(scope="module")
def rows() -> list[list[Any]]:
    """Four days of requests and LLM calls."""
    rng = random.Random(11)
    now_ms = int(time.time() * 1000)
    out = []
    for i in range(3000):
        at = now_ms - rng.randrange(4 * 86_400_000)
        fields: dict[str, Any]
        if i % 10 == 0:
            fields = {"type": "llm", "model": rng.choice(["gpt-x", "gpt-y"]), "input_tokens": 10}
        else:
            fields = {
                "method": rng.choice(["GET", "POST"]),
                "path": f"/items/{rng.randrange(5)}",
                "status": rng.choice([200, 201, 404, 500]),
                "latency_ms": round(rng.lognormvariate(4, 0.8), 3),
                "consumer_id": f"cus_{rng.randrange(40)}",
                "response_size": rng.randrange(5000),
            }
        out.append(event_row(ORG, now_ms, event_id=f"b{i}", timestamp=at, **fields))
    return out


@pytest.fixture(scope="module")
def embedded(chdb_store: Store, rows: list[list[Any]]) -> Store:
    chdb_store.insert_rows([list(r) for r in rows])
    return chdb_store


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("clickhouse-connect", id="clickhouse-connect"),
        pytest.param(
            "clickhouse-server",
            id="clickhouse-server",
            marks=pytest.mark.skipif(
                not CLICKHOUSE_URL, reason="METERLINE_TEST_CLICKHOUSE_URL not set"
            ),
        ),
    ],
)
def connected(
    request: pytest.FixtureRequest, chdb_store: Store, rows: list[list[Any]]
) -> Iterator[Store]:
    """The ClickHouse store holding the same rows."""
    if request.param == "clickhouse-server":
        assert CLICKHOUSE_URL is not None
        store: Store = store_from_url(CLICKHOUSE_URL)
        store.migrate()
    else:
        store = through_client(chdb_store, "meterline_backends_agree")
    store.insert_rows([list(r) for r in rows])
    yield store
    store.close()


@pytest.mark.parametrize("name", list(CASES))
def test_the_clickhouse_store_answers_like_the_embedded_one(
    embedded: Store, connected: Store, name: str
) -> None:
    expected = QueryService(embedded).run(ORG, CASES[name]).data
    assert expected  # the case has data to compare
    assert QueryService(connected).run(ORG, CASES[name]).data == expected
