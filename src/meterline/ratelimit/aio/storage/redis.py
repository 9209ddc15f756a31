"""Counters in Redis for asyncio code: one script per decision, bounded by a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis
import redis.asyncio as aioredis

from meterline.ratelimit.aio.storage.base import Storage
from meterline.ratelimit.algorithms import Check
from meterline.ratelimit.decision import RuleState
from meterline.ratelimit.storage.base import StorageError
from meterline.ratelimit.storage.redis import (
    DEFAULT_TIMEOUT,
    SCRIPT,
    client_options,
    parse_reply,
    script_args,
)


class RedisStorage(Storage):
    """The asyncio twin of the sync ``RedisStorage``; every call is also bounded by
    ``asyncio.timeout``, so a Redis that accepts and never answers cannot hang a request."""

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
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout, **client_options(timeout)
        )
        self.client: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self._script = self.client.register_script(SCRIPT)

    async def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """See :meth:`Storage.apply`."""
        keys, args = script_args(now, checks, token, consume)
        try:
            async with asyncio.timeout(self.timeout * 2):
                raw = await self._script(keys=keys, args=args)
        except (redis.RedisError, TimeoutError, OSError) as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc
        return parse_reply(raw, checks)

    async def release(self, key: str, token: str) -> None:
        """See :meth:`Storage.release`."""
        try:
            async with asyncio.timeout(self.timeout * 2):
                await self.client.zrem(key, token)
        except (redis.RedisError, TimeoutError, OSError) as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc

    async def clear(self) -> None:
        """Delete the limiter's keys (``SCAN``, never ``KEYS``)."""
        async for key in self.client.scan_iter(match="ml:*", count=1000):
            await self.client.delete(key)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
