"""Idempotency: remembers recently accepted ``(org, event_id)`` pairs within a bound."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class RecentKeys:
    """A bounded set of recent event keys: the oldest are forgotten past ``capacity``.

    Keys are 64-bit hashes of ``org_id`` and ``event_id``, so memory stays near
    80 bytes a key; within one process lifetime the hash is stable, and the set is
    rebuilt from the store and the log at start-up.

    Example:
        >>> keys = RecentKeys(capacity=2)
        >>> keys.reserve("org", "a"), keys.reserve("org", "a")
        (True, False)
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._set: set[int] = set()
        self._order: deque[int] = deque()

    @staticmethod
    def key(org_id: str, event_id: str) -> int:
        """The hash under which an event is remembered."""
        return hash((org_id, event_id))

    def reserve(self, org_id: str, event_id: str) -> bool:
        """Remember the event; False when it was already known (a duplicate)."""
        key = hash((org_id, event_id))
        if key in self._set:
            return False
        self._add(key)
        return True

    def reserve_many(self, org_id: str, event_ids: list[str]) -> list[bool]:
        """:meth:`reserve` for each id in order (a repeat within ``event_ids`` is a
        duplicate too); one set operation when, as usual, none is known."""
        keys = [hash((org_id, event_id)) for event_id in event_ids]
        fresh = set(keys)
        if len(fresh) == len(keys) and self._set.isdisjoint(fresh):
            self._set |= fresh
            self._order.extend(keys)
            self._trim()
            return [True] * len(keys)
        return [self.reserve(org_id, event_id) for event_id in event_ids]

    def release(self, keys: Iterable[int]) -> None:
        """Forget keys reserved by a request that then failed to become durable."""
        for key in keys:
            self._set.discard(key)

    def _add(self, key: int) -> None:
        self._set.add(key)
        self._order.append(key)
        self._trim()

    def _trim(self) -> None:
        order, known = self._order, self._set
        while len(order) > self.capacity:
            known.discard(order.popleft())

    def load(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Remember many ``(org_id, event_id)`` pairs, oldest first."""
        for org_id, event_id in pairs:
            key = hash((org_id, event_id))
            if key not in self._set:
                self._add(key)

    def __len__(self) -> int:
        return len(self._set)
