"""Rate-limit fixtures: a real redis-server, and the storage matrix (memory, redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meterline.ratelimit import MemoryStorage, RedisStorage, Storage
from tests.ratelimit.redis_server import RedisServer

STORAGES = [pytest.param("memory", id="memory"), pytest.param("redis", id="redis")]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def make_storage(kind: str, server: RedisServer) -> Storage:
    if kind == "memory":
        return MemoryStorage()
    server.flush()
    storage: Storage = RedisStorage(server.url, timeout=5.0)
    return storage


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Storage]:
    made = make_storage(request.param, redis_server)
    yield made
    made.close()
