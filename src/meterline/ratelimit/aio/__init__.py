"""The asyncio twin of :mod:`meterline.ratelimit`: same class names, awaited."""

from __future__ import annotations

from meterline.ratelimit.aio.limiter import RateLimiter
from meterline.ratelimit.aio.storage import MemoryStorage, Storage, storage_from_url


def __getattr__(name: str) -> object:
    # redis-py is optional for users of the memory storage.
    if name == "RedisStorage":
        from meterline.ratelimit.aio.storage.redis import RedisStorage

        return RedisStorage
    if name == "RedisClusterStorage":
        from meterline.ratelimit.aio.storage.redis import RedisClusterStorage

        return RedisClusterStorage
    raise AttributeError(name)


__all__ = [
    "MemoryStorage",
    "RateLimiter",
    "RedisClusterStorage",
    "RedisStorage",
    "Storage",
    "storage_from_url",
]
