"""Store queries run off the event loop: while one waits for the store, the server
still answers (ingest acknowledgements and live streams share that loop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_python


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/query", {"metrics": ["requests"], "range": "1h"}),
        ("/v2/analytics/visualization", {"metric": "requests", "time_range": "1h"}),
    ],
)
def test_a_query_waiting_for_the_store_leaves_the_server_answering(
    tmp_path: Path, path: str, body: dict[str, Any]
) -> None:
    found = run_python(["-m", "tests.api.held_queries", str(tmp_path), path, json.dumps(body)])
    assert found["held"], "the query never reached the store"
    assert found["answered_while_held"], "the server answered nothing while a query was held"
    assert found["status"] == 200, found["body"]
