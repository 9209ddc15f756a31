"""The asyncio twin of :mod:`meterline.ratelimit`: same class names, awaited."""

from __future__ import annotations

from meterline.ratelimit.aio.limiter import RateLimiter
from meterline.ratelimit.aio.storage import MemoryStorage, Storage, storage_from_url


def __getattr__(name: str) -> object:
    # redis-py is optional for users of the memory storage.
    if name == "RedisStorage":
        from meterline.ratelimit.aio.storage.redis import RedisStorage

        return RedisStorage
    raise AttributeError(name)


__all__ = ["MemoryStorage", "RateLimiter", "RedisStorage", "Storage", "storage_from_url"]
