"""Fixtures: the embedded store, and a real server process with two tenants."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterline.store import Store, store_from_url
from tests.helpers import ServerProcess, Tenant, make_tenant


@pytest.fixture(scope="session")
def chdb_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One embedded store for the in-process tests (chDB allows one session at a time);
    tests keep apart by using their own org ids."""
    store = store_from_url(f"chdb://{tmp_path_factory.mktemp('chdb')}")
    store.migrate()
    yield store
    store.close()


@pytest.fixture(scope="session")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="session")
def tenants(server_dir: Path) -> tuple[Tenant, Tenant]:
    return make_tenant(server_dir, "acme", "professional", operator=True), make_tenant(
        server_dir, "globex"
    )


@pytest.fixture(scope="session")
def server(server_dir: Path, tenants: tuple[Tenant, Tenant]) -> Iterator[ServerProcess]:
    proc = ServerProcess(server_dir)
    proc.start()
    yield proc
    proc.stop()
