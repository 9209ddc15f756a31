"""A server process of its own for stream tests (short token grace, its own tenants)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ServerProcess, Tenant, make_tenant


@pytest.fixture(scope="module")
def stream_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stream")


@pytest.fixture(scope="module")
def stream_tenants(stream_dir: Path) -> tuple[Tenant, Tenant]:
    # Professional: the stream tests make more API calls than the basic burst of 50.
    return make_tenant(stream_dir, "livecorp", "professional"), make_tenant(stream_dir, "othercorp")


@pytest.fixture(scope="module")
def stream_server(
    stream_dir: Path, stream_tenants: tuple[Tenant, Tenant]
) -> Iterator[ServerProcess]:
    proc = ServerProcess(stream_dir, env={"METERLINE_STREAM_TOKEN_GRACE": "1"}, log_level="info")
    proc.start()
    yield proc
    proc.stop()
