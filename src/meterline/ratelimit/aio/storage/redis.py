"""Counters in Redis for asyncio code: one script per decision, bounded by a timeout."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from meterline.ratelimit.aio.storage.base import Storage
from meterline.ratelimit.algorithms import Check
from meterline.ratelimit.decision import RuleState
from meterline.ratelimit.storage.base import StorageError
from meterline.ratelimit.storage.redis import (
    DEFAULT_TIMEOUT,
    FAILURES,
    SCRIPT,
    ScriptCall,
    client_options,
    parse_reply,
    script_args,
)


class ConnectionPool:
    """The asyncio twin of the sync storage's pool: idle connections in a ``deque``, at
    most ``size`` open, a caller waiting (within its timeout) when all are busy."""

    def __init__(self, url: str, size: int, timeout: float) -> None:
        # No socket timeout on the connection: each call runs under one asyncio.timeout,
        # which is cheaper than redis-py's wait_for per send and per read.
        options = {**client_options(timeout), "socket_timeout": None}
        self.factory = aioredis.ConnectionPool.from_url(url, **options)
        self.size = size
        self.idle: deque[AbstractConnection] = deque()
        self.opened = 0

    async def take(self) -> AbstractConnection:
        """An idle connection, a new one, or (all busy) the first one freed."""
        while True:
            if self.idle:
                return self.idle.pop()
            if self.opened < self.size:
                self.opened += 1
                made: AbstractConnection = self.factory.make_connection()  # type: ignore[no-untyped-call]
                return made
            await asyncio.sleep(0.0005)  # the caller's asyncio.timeout bounds the wait

    def give(self, conn: AbstractConnection) -> None:
        """Return a connection taken from this pool."""
        self.idle.append(conn)

    async def close(self) -> None:
        """Disconnect every idle connection."""
        while self.idle:
            await self.idle.pop().disconnect()
        await self.factory.disconnect()


class RedisStorage(Storage):
    """The asyncio twin of the sync ``RedisStorage``: one pre-packed ``EVALSHA`` per
    decision; every call is bounded by ``asyncio.timeout``, so a Redis that accepts and
    never answers cannot hang a request."""

    SCHEMES = ("redis", "rediss", "unix")

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 64,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.pool = ConnectionPool(url, max_connections, timeout)
        self.client: aioredis.Redis = aioredis.Redis.from_pool(
            aioredis.ConnectionPool.from_url(url, **client_options(timeout))
        )
        self.call = ScriptCall(SCRIPT)

    async def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """See :meth:`Storage.apply`."""
        packed = [self.call.pack(now, checks, token, consume)]
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self._send(packed)
        except (redis.RedisError, TimeoutError, OSError) as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc
        return parse_reply(raw, checks)

    async def _send(self, packed: list[bytes]) -> Any:
        pool = self.pool
        conn = await pool.take()
        try:
            await conn.send_packed_command(packed, check_health=False)
            try:
                return await conn.read_response()
            except redis.exceptions.NoScriptError:
                await conn.send_command("SCRIPT", "LOAD", SCRIPT)
                await conn.read_response()
                await conn.send_packed_command(packed, check_health=False)
                return await conn.read_response()
        except BaseException:
            await conn.disconnect(nowait=True)  # a half-read reply must not be reused
            raise
        finally:
            pool.give(conn)

    async def release(self, key: str, token: str) -> None:
        """See :meth:`Storage.release`."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.zrem(key, token)
        except (redis.RedisError, TimeoutError, OSError) as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc

    async def clear(self) -> None:
        """Delete the limiter's keys (``SCAN``, never ``KEYS``)."""
        async for key in self.client.scan_iter(match="ml:*", count=1000):
            await self.client.delete(key)

    async def close(self) -> None:
        """Close both connection pools."""
        await self.pool.close()
        await self.client.aclose()


class RedisClusterStorage(Storage):
    """The asyncio twin of the sync ``RedisClusterStorage`` (URL scheme
    ``redis+cluster://host:port``, any node of the cluster).

    Every key of a decision carries the same ``{hash tag}`` (see ``hash_tag`` of the
    limiter), so the decision's script runs on the one node that owns that slot: one
    round trip, atomic. redis-py's asyncio cluster client routes by slot and follows
    ``MOVED`` redirections; every call, the first one's discovery of the cluster
    included, is bounded by ``asyncio.timeout``.
    """

    SCHEMES = ("redis+cluster", "rediss+cluster")

    def __init__(
        self, url: str = "redis+cluster://localhost:7000", *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        from redis.asyncio.cluster import RedisCluster
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.timeout = timeout
        options = client_options(timeout)
        options.pop("health_check_interval")
        options.pop("retry_on_timeout")  # not an option of the asyncio cluster client
        options["retry"] = Retry(NoBackoff(), 0)  # the asyncio client's own Retry type
        self.client: RedisCluster = RedisCluster.from_url(url.replace("+cluster", "", 1), **options)
        self.sha = ScriptCall(SCRIPT).sha

    async def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """See :meth:`Storage.apply`."""
        keys, args = script_args(now, checks, token, consume)
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    raw = await self.client.evalsha(self.sha, len(keys), *keys, *args)
                except redis.exceptions.NoScriptError:
                    # EVAL runs the script on the slot's node and caches it there
                    raw = await self.client.eval(SCRIPT, len(keys), *keys, *args)
        except (*FAILURES, TimeoutError) as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc
        return parse_reply(raw, checks)

    async def release(self, key: str, token: str) -> None:
        """See :meth:`Storage.release`."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.zrem(key, token)
        except (*FAILURES, TimeoutError) as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc

    async def clear(self) -> None:
        """Delete the limiter's keys on every primary (``SCAN``, never ``KEYS``)."""
        try:
            async for key in self.client.scan_iter(match="ml:*", count=1000):
                await self.client.delete(key)
        except FAILURES as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc

    async def close(self) -> None:
        """Close the cluster client's connections."""
        await self.client.aclose()
