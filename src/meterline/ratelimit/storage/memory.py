"""In-process counters: exact across threads, forgotten when the process ends."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

from meterline.ratelimit.algorithms import Check, Outcome, evaluate
from meterline.ratelimit.storage.base import Storage

_SWEEP_BUCKET = 1.0
"""Expiry granularity in seconds: keys are forgotten by the second they expire in."""


class MemoryStorage(Storage):
    """Counters in a dict under one lock; expired counters are dropped incrementally.

    Expiry is bucketed by second, so dropping old counters costs time proportional to what
    expires, never a rescan of every key.
    """

    SCHEMES = ("memory",)

    def __init__(self, url: str = "memory://") -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, Any]] = {}
        self._buckets: dict[int, set[str]] = {}
        self._swept = -1

    def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, list[Outcome]]:
        """See :meth:`Storage.apply`; atomic under the storage's lock."""
        with self._lock:
            self._sweep(now)
            outcomes: list[Outcome] = []
            updates: list[tuple[str, Any, float]] = []
            allowed = True
            state = self._state
            for check in checks:
                held = state.get(check.key)
                current = held[1] if held is not None and held[0] > now else None
                outcome, new, expires = evaluate(current, check, now, token)
                outcomes.append(outcome)
                allowed = allowed and outcome.allowed
                updates.append((check.key, new, expires))
            if allowed and consume:
                for key, new, expires in updates:
                    self._put(key, new() if callable(new) else new, expires)
            return allowed, outcomes

    def _put(self, key: str, value: Any, expires: float) -> None:
        old = self._state.get(key)
        self._state[key] = (expires, value)
        bucket = math.floor(expires / _SWEEP_BUCKET)
        if old is None or math.floor(old[0] / _SWEEP_BUCKET) != bucket:
            self._buckets.setdefault(bucket, set()).add(key)

    def _sweep(self, now: float) -> None:
        current = math.floor(now / _SWEEP_BUCKET)
        if current <= self._swept:
            return
        if self._swept < 0 or current - self._swept > len(self._buckets):
            due = [b for b in self._buckets if b < current]
        else:
            due = [b for b in range(self._swept, current) if b in self._buckets]
        for bucket in due:
            for key in self._buckets.pop(bucket):
                held = self._state.get(key)
                if held is not None and held[0] <= now:
                    del self._state[key]
        self._swept = current

    def release(self, key: str, token: str) -> None:
        """See :meth:`Storage.release`."""
        with self._lock:
            held = self._state.get(key)
            if held is not None and isinstance(held[1], dict):
                held[1].pop(token, None)

    def clear(self) -> None:
        """See :meth:`Storage.clear`."""
        with self._lock:
            self._state.clear()
            self._buckets.clear()
            self._swept = -1

    def __len__(self) -> int:
        return len(self._state)
