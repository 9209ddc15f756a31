from __future__ import annotations

from collections.abc import Iterator

import clickhouse_connect
import pytest

from meterline.store import Store, store_from_url
from meterline.store.chdb import ChdbStore
from meterline.store.clickhouse import ClickHouseStore
from tests.backends import CLICKHOUSE_URL


@pytest.fixture
def store(request: pytest.FixtureRequest, chdb_store: Store) -> Iterator[Store]:
    """The store a contract test runs against (see ``tests/backends.py``)."""
    if request.param == "chdb":
        yield chdb_store
        return
    if request.param == "clickhouse-connect":
        # chDB runs one engine per process: the client opens the same one, and the
        # store keeps to a database of its own.
        assert isinstance(chdb_store, ChdbStore)
        client = clickhouse_connect.get_client(
            interface="chdb",
            path=str(chdb_store.path),
            settings={"output_format_json_quote_64bit_integers": 0},
        )
        connected = ClickHouseStore.with_client(client, "meterline_via_client")
        connected.migrate()
        yield connected
        connected.close()
        return
    assert CLICKHOUSE_URL is not None
    server = store_from_url(CLICKHOUSE_URL)
    server.migrate()
    yield server
    server.close()
