"""The storage contract: evaluate several checks and consume all of them or none."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from meterline.errors import MeterlineError
from meterline.ratelimit.algorithms import Check
from meterline.ratelimit.decision import RuleState


class StorageError(MeterlineError):
    """The rate-limit storage failed or did not answer within its timeout."""

    code = "RATE_LIMITER_UNAVAILABLE"
    status = 503


class Storage(ABC):
    """Counters behind the limiter, chosen by URL scheme (``memory://``, ``redis://``).

    The one promise that makes multi-tier limiting exact: :meth:`apply` evaluates every
    check against the same instant and, only when every check allows and ``consume`` is
    true, consumes from all of them, as one atomic step with respect to every other caller
    of the same storage. A request denied by one tier therefore consumes nothing.

    Example:
        >>> storage = storage_from_url("memory://")
        >>> allowed, outcomes = storage.apply(now, [check], token="t1", consume=True)
    """

    SCHEMES: tuple[str, ...] = ()
    NAMES_LOG_ENTRIES = True
    """Whether sliding-log entries need the decision token as a unique name (Redis
    sorted-set members do; the memory storage keeps bare timestamps)."""

    @abstractmethod
    def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """Evaluate ``checks`` at ``now``; consume from all of them iff all allow.

        ``token`` is unique per decision (it names concurrency leases). Raises
        :class:`StorageError` when the storage fails or times out.
        """

    @abstractmethod
    def release(self, key: str, token: str) -> None:
        """Give back the concurrency lease ``token`` held on ``key``."""

    @abstractmethod
    def clear(self) -> None:
        """Forget every counter this storage holds (under its prefix)."""

    def close(self) -> None:
        """Release connections; the default has none."""
        return
