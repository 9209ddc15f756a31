"""Rate-limit fixtures: a real redis-server, a real three-node Redis Cluster, and the
conformance matrix: every storage (memory, redis, redis cluster) under both limiters
(sync, asyncio)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any, TypeVar

import pytest

from meterline.clock import Clock
from meterline.ratelimit import (
    MemoryStorage,
    RateLimiter,
    RedisClusterStorage,
    RedisStorage,
    Rule,
    aio,
)
from meterline.ratelimit.decision import Decision
from meterline.ratelimit.rules import Identity
from tests.ratelimit.redis_cluster import Cluster
from tests.ratelimit.redis_server import RedisServer

T = TypeVar("T")
BACKENDS = [
    pytest.param(("memory", "sync"), id="memory-sync"),
    pytest.param(("memory", "asyncio"), id="memory-asyncio"),
    pytest.param(("redis", "sync"), id="redis-sync"),
    pytest.param(("redis", "asyncio"), id="redis-asyncio"),
    pytest.param(("cluster", "sync"), id="cluster-sync", marks=pytest.mark.slow),
    pytest.param(("cluster", "asyncio"), id="cluster-asyncio", marks=pytest.mark.slow),
]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


class LoopThread:
    """One event loop in a thread of its own, so sync test code can await coroutines on a
    loop that outlives each call (asyncio Redis connections belong to their loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class AwaitedLimiter:
    """The asyncio limiter behind the sync limiter's methods: each call is awaited on the
    loop thread, so one conformance test body runs against both."""

    def __init__(self, limiter: aio.RateLimiter, loop: LoopThread) -> None:
        self.limiter = limiter
        self.loop = loop

    def hit(self, identity: Identity, **options: Any) -> Decision:
        return self.loop.run(self.limiter.hit(identity, **options))

    def peek(self, identity: Identity, **options: Any) -> Decision:
        return self.loop.run(self.limiter.peek(identity, **options))

    def release(self, decision: Decision) -> None:
        self.loop.run(self.limiter.release(decision))

    def close(self) -> None:
        self.loop.run(self.limiter.close())


class Backend:
    """Makes limiters of one kind (sync or asyncio) over one shared storage of one kind
    (memory, redis or a redis cluster), the way a user would build them."""

    def __init__(self, storage: str, flavour: str, server: RedisServer | Cluster) -> None:
        self.storage_kind, self.flavour = storage, flavour
        self.loop = LoopThread() if flavour == "asyncio" else None
        if storage != "memory":
            server.flush()
        self._storage: Any = None
        self.server = server
        self.made: list[Any] = []

    def _shared_storage(self) -> Any:
        if self._storage is None:
            kinds: dict[str, Any] = {
                "memory": (MemoryStorage, aio.MemoryStorage),
                "redis": (RedisStorage, aio.RedisStorage),
                "cluster": (RedisClusterStorage, aio.RedisClusterStorage),
            }
            sync, awaited = kinds[self.storage_kind]
            kind = sync if self.flavour == "sync" else awaited
            self._storage = (
                kind() if self.storage_kind == "memory" else kind(self.server.url, timeout=5.0)
            )
        return self._storage

    def limiter(self, rules: Iterable[Rule], clock: Clock) -> Any:
        """A limiter with ``rules`` on this backend's storage (shared by every limiter the
        backend makes), deciding by ``clock``."""
        storage = self._shared_storage()
        if self.loop is None:
            return RateLimiter(storage, list(rules), clock=clock)
        limiter = AwaitedLimiter(aio.RateLimiter(storage, list(rules), clock=clock), self.loop)
        self.made.append(limiter)
        return limiter

    def close(self) -> None:
        if self._storage is not None:
            if self.loop is None:
                self._storage.close()
            else:
                self.loop.run(self._storage.close())
        if self.loop is not None:
            self.loop.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    storage, flavour = request.param
    # each server starts only when a test first needs it
    server = request.getfixturevalue("redis_cluster" if storage == "cluster" else "redis_server")
    made = Backend(storage, flavour, server)
    yield made
    made.close()
