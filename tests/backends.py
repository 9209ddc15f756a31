"""The store backends the contract tests run against: chDB always; the ClickHouse
store always, through clickhouse-connect on the embedded engine (the client's requests,
result decoding and server-side parameters, without its HTTP transport); and the
ClickHouse store on a real server when ``METERLINE_TEST_CLICKHOUSE_URL`` points at one."""

from __future__ import annotations

import os

import clickhouse_connect
import pytest

from meterline.store import Store
from meterline.store.chdb import ChdbStore
from meterline.store.clickhouse import CLIENT_SETTINGS, ClickHouseStore

CLICKHOUSE_URL = os.environ.get("METERLINE_TEST_CLICKHOUSE_URL")

ALL_STORES = [
    pytest.param("chdb", id="chdb"),
    pytest.param("clickhouse-connect", id="clickhouse-connect"),
    pytest.param(
        "clickhouse",
        id="clickhouse",
        marks=[
            pytest.mark.clickhouse,
            pytest.mark.skipif(not CLICKHOUSE_URL, reason="METERLINE_TEST_CLICKHOUSE_URL not set"),
        ],
    ),
]


def through_client(embedded: Store, database: str) -> ClickHouseStore:
    """The ClickHouse store, migrated, in ``database`` of the embedded store's engine,
    reached through clickhouse-connect (chDB runs one engine per process, so the client
    opens the same one)."""
    assert isinstance(embedded, ChdbStore)
    client = clickhouse_connect.get_client(
        interface="chdb",
        path=str(embedded.path),
        settings=dict(CLIENT_SETTINGS),
    )
    store = ClickHouseStore.with_client(client, database)
    store.migrate()
    return store
