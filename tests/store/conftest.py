from __future__ import annotations

from collections.abc import Iterator

import pytest

from meterline.store import Store, store_from_url
from tests.backends import CLICKHOUSE_URL, through_client


@pytest.fixture
def store(request: pytest.FixtureRequest, chdb_store: Store) -> Iterator[Store]:
    """The store a contract test runs against (see ``tests/backends.py``)."""
    if request.param == "chdb":
        yield chdb_store
        return
    if request.param == "clickhouse-connect":
        connected = through_client(chdb_store, "meterline_via_client")
        yield connected
        connected.close()
        return
    assert CLICKHOUSE_URL is not None
    server = store_from_url(CLICKHOUSE_URL)
    server.migrate()
    yield server
    server.close()
