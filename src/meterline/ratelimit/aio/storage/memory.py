"""In-process counters for asyncio code: the sync memory storage, which never blocks long."""

from __future__ import annotations

from collections.abc import Sequence

from meterline.ratelimit.aio.storage.base import Storage
from meterline.ratelimit.algorithms import Check
from meterline.ratelimit.decision import RuleState
from meterline.ratelimit.storage.memory import MemoryStorage as SyncMemoryStorage


class MemoryStorage(Storage):
    """Counters in this process; safe to share with sync code through :attr:`sync`."""

    SCHEMES = ("memory",)
    NAMES_LOG_ENTRIES = False

    def __init__(self, url: str = "memory://") -> None:
        self.sync = SyncMemoryStorage(url)

    async def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """See :meth:`Storage.apply`."""
        return self.sync.apply(now, checks, token, consume)

    async def release(self, key: str, token: str) -> None:
        """See :meth:`Storage.release`."""
        self.sync.release(key, token)

    async def clear(self) -> None:
        """See :meth:`Storage.clear`."""
        self.sync.clear()
