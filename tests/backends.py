"""The store backends the contract tests run against: chDB always, ClickHouse when
``METERLINE_TEST_CLICKHOUSE_URL`` points at a server."""

from __future__ import annotations

import os

import pytest

CLICKHOUSE_URL = os.environ.get("METERLINE_TEST_CLICKHOUSE_URL")

ALL_STORES = [
    pytest.param("chdb", id="chdb"),
    pytest.param(
        "clickhouse",
        id="clickhouse",
        marks=[
            pytest.mark.clickhouse,
            pytest.mark.skipif(not CLICKHOUSE_URL, reason="METERLINE_TEST_CLICKHOUSE_URL not set"),
        ],
    ),
]
