"""Rate-limit storages, chosen by URL scheme: ``memory://``, ``redis://``, ``rediss://``,
``redis+cluster://``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from meterline.errors import ConfigurationError
from meterline.ratelimit.storage.base import Storage, StorageError
from meterline.ratelimit.storage.memory import MemoryStorage

__all__ = ["MemoryStorage", "Storage", "StorageError", "storage_from_url"]


def storage_from_url(url: str, **options: Any) -> Storage:
    """Build the storage for ``url`` (``memory://`` or ``redis://host:port/db``)."""
    scheme = urlsplit(url).scheme
    if scheme in MemoryStorage.SCHEMES:
        return MemoryStorage(url)
    from meterline.ratelimit.storage.redis import RedisClusterStorage, RedisStorage

    if scheme in RedisStorage.SCHEMES:
        return RedisStorage(url, **options)
    if scheme in RedisClusterStorage.SCHEMES:
        return RedisClusterStorage(url, **options)
    raise ConfigurationError(f"no rate-limit storage for scheme {scheme!r}")
