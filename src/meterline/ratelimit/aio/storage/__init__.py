"""Asyncio rate-limit storages, chosen by URL scheme like the sync ones: ``memory://``,
``redis://``, ``rediss://``, ``redis+cluster://``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from meterline.errors import ConfigurationError
from meterline.ratelimit.aio.storage.base import Storage
from meterline.ratelimit.aio.storage.memory import MemoryStorage

__all__ = ["MemoryStorage", "Storage", "storage_from_url"]


def storage_from_url(url: str, **options: Any) -> Storage:
    """Build the asyncio storage for ``url`` (``memory://``, ``redis://host:port/db`` or
    ``redis+cluster://host:port``)."""
    scheme = urlsplit(url).scheme
    if scheme in MemoryStorage.SCHEMES:
        return MemoryStorage(url)
    from meterline.ratelimit.aio.storage.redis import RedisClusterStorage, RedisStorage

    if scheme in RedisStorage.SCHEMES:
        return RedisStorage(url, **options)
    if scheme in RedisClusterStorage.SCHEMES:
        return RedisClusterStorage(url, **options)
    raise ConfigurationError(f"no rate-limit storage for scheme {scheme!r}")
