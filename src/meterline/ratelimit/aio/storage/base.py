"""The asyncio storage contract, the twin of :mod:`meterline.ratelimit.storage.base`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from meterline.ratelimit.algorithms import Check
from meterline.ratelimit.decision import RuleState


class Storage(ABC):
    """Counters behind the asyncio limiter; same promise as the sync ``Storage.apply``:
    every check evaluated at one instant, all consumed or none, atomically.

    Example:
        >>> allowed, outcomes = await storage.apply(now, [check], token="t1", consume=True)
    """

    SCHEMES: tuple[str, ...] = ()
    NAMES_LOG_ENTRIES = True
    """Whether sliding-log entries need the decision token as a unique name (Redis
    sorted-set members do; the memory storage keeps bare timestamps)."""

    @abstractmethod
    async def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """Evaluate ``checks``; consume from all iff all allow. Raises ``StorageError``."""

    @abstractmethod
    async def release(self, key: str, token: str) -> None:
        """Give back the concurrency lease ``token`` held on ``key``."""

    @abstractmethod
    async def clear(self) -> None:
        """Forget every counter."""

    async def close(self) -> None:
        """Release connections; the default has none."""
        return
