"""The store backends the contract tests run against: chDB always; the ClickHouse
store always, through clickhouse-connect on the embedded engine (the client's requests,
result decoding and server-side parameters, without its HTTP transport); and the
ClickHouse store on a real server when ``METERLINE_TEST_CLICKHOUSE_URL`` points at one."""

from __future__ import annotations

import os

import pytest

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
