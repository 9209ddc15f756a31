"""Injectable time, so that windows, tokens and schedules are deterministic in tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""A function returning the current time as Unix seconds."""


def system_clock() -> float:
    """Return the wall-clock time as Unix seconds."""
    return time.time()


def utcnow(clock: Clock = system_clock) -> datetime:
    """Return the clock's time as an aware UTC datetime."""
    return datetime.fromtimestamp(clock(), tz=UTC)


class FrozenClock:
    """A clock that stands still until moved; for tests and backfills.

    Example:
        >>> clock = FrozenClock(1000.0)
        >>> clock.advance(5)
        >>> clock()
        1005.0
    """

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds
