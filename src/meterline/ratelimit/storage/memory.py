"""In-process counters: exact across threads, forgotten when the process ends."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

from meterline.ratelimit.algorithms import Check
from meterline.ratelimit.decision import RuleState
from meterline.ratelimit.storage.base import Storage

_new = tuple.__new__  # a named tuple from a ready tuple, without its Python __new__


class MemoryStorage(Storage):
    """Counters in a dict under one lock; expired counters are dropped incrementally.

    Each counter is held as a two-item list ``[expires, state]`` updated in place. Expiry
    is bucketed by whole second, so dropping old counters costs time proportional to what
    expires, never a rescan of every key. One lock for the whole storage keeps a
    multi-tier decision atomic without ordering several locks; it is held for a few
    microseconds per decision.
    """

    SCHEMES = ("memory",)
    NAMES_LOG_ENTRIES = False

    def __init__(self, url: str = "memory://") -> None:
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._state: dict[str, list[Any]] = {}
        self._buckets: dict[int, set[str]] = {}
        self._swept = -1
        self._sweep_at = -1.0

    def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """See :meth:`Storage.apply`; atomic under the storage's lock."""
        state = self._state
        # acquire/release rather than ``with``: measurably cheaper on this hot path
        self._acquire()
        try:
            if now >= self._sweep_at:
                self._sweep(now)
            if len(checks) == 1:  # the common case, without the bookkeeping of several
                check = checks[0]
                if check.counter and consume:  # fixed_window() inlined
                    # the counter linked to the check, while it is this window's live one
                    held = check.cell
                    if held is None or held[0] != check.end or check.cell_owner is not self:
                        held = state.get(check.key)
                    count = held[1] if held is not None and held[0] > now else 0
                    left = check.limit - count - check.cost
                    if left >= 0:
                        if held is not None and held[0] == check.end:
                            held[1] = count + check.cost
                        else:
                            held = self._put(check.key, held, count + check.cost, check.end)
                        if check.cell is not held:
                            check.cell, check.cell_owner = held, self
                        return True, (
                            _new(RuleState, (check.rule, check.limit, True, left, check.end, 0.0)),
                        )
                held = check.cell
                # a linked cell that has not expired is the live one (see _sweep)
                if held is None or held[0] <= now or check.cell_owner is not self:
                    held = state.get(check.key)
                if check.log and consume and held is not None and held[0] > now:
                    # sliding_log() inlined, for a log that exists
                    if check.cell is not held:
                        check.cell, check.cell_owner = held, self
                    entries = held[1]
                    horizon = now - check.window
                    while entries and entries[0] <= horizon:
                        entries.popleft()  # expired entries change no decision
                    left = check.limit - len(entries) - check.cost
                    if left >= 0:
                        if check.cost == 1:
                            entries.append(now)
                        else:
                            entries.extend([now] * check.cost)
                        expires = now + check.window
                        if int(held[0]) == int(expires):
                            held[0] = expires
                        else:
                            self._put(check.key, held, entries, expires)
                        return True, (
                            _new(RuleState, (check.rule, check.limit, True, left, expires, 0.0)),
                        )
                if held is None:
                    answer, new, expires = check.step(None, check, now, token)
                elif held[0] > now:
                    answer, new, expires = check.step(held[1], check, now, token)
                else:
                    answer, new, expires = check.step(None, check, now, token)
                if answer[2] and consume:
                    if callable(new):
                        new = new()
                    if held is not None and (held[0] == expires or int(held[0]) == int(expires)):
                        held[0] = expires  # same expiry bucket: update in place
                        held[1] = new
                    else:
                        self._put(check.key, held, new, expires)
                return answer[2], (answer,)
            states: list[RuleState] = []
            updates: list[tuple[str, Any, Any, float]] = []
            allowed = True
            for check in checks:
                held = state.get(check.key)
                current = held[1] if held is not None and held[0] > now else None
                answer, new, expires = check.step(current, check, now, token)
                states.append(answer)
                allowed = allowed and answer[2]
                updates.append((check.key, held, new, expires))
            if allowed and consume:
                for key, held, new, expires in updates:
                    self._put(key, held, new() if callable(new) else new, expires)
            return allowed, states
        finally:
            self._release()

    def _put(self, key: str, held: list[Any] | None, value: Any, expires: float) -> list[Any]:
        # times are positive, so int() is the floor: the expiry bucket (a second)
        if held is None:
            held = self._state[key] = [expires, value]
        else:
            old = held[0]
            held[0] = expires
            held[1] = value
            if int(old) == int(expires):
                return held  # already filed in this bucket
            # moved to a later second: one bucket per key, so the buckets of counters
            # that move on every hit (logs, buckets) stay as small as the set of keys
            filed = self._buckets.get(int(old))
            if filed is not None:
                filed.discard(key)
        # a counter already due (a caller whose clock lags the last sweep's) goes in the
        # next bucket to sweep, not in one already swept, where it would stay forever
        second = max(int(expires), self._swept)
        bucket = self._buckets.get(second)
        if bucket is None:
            self._buckets[second] = {key}
        else:
            bucket.add(key)
        return held

    def _sweep(self, now: float) -> None:
        current = int(now)
        if self._swept < 0 or current - self._swept > len(self._buckets):
            due = [b for b in self._buckets if b < current]
        else:
            due = [b for b in range(self._swept, current) if b in self._buckets]
        for bucket in due:
            for key in self._buckets.pop(bucket):
                held = self._state.get(key)
                if held is not None and held[0] <= now:
                    del self._state[key]
                    held[0] = -math.inf  # dead: no check's linked cell matches it again
        self._swept = current
        self._sweep_at = current + 1.0

    def release(self, key: str, token: str) -> None:
        """See :meth:`Storage.release`."""
        with self._lock:
            held = self._state.get(key)
            if held is not None and isinstance(held[1], dict):
                held[1].pop(token, None)

    def clear(self) -> None:
        """See :meth:`Storage.clear`."""
        with self._lock:
            for held in self._state.values():
                held[0] = -math.inf  # dead (see _sweep)
            self._state.clear()
            self._buckets.clear()
            self._swept = -1
            self._sweep_at = -1.0

    def __len__(self) -> int:
        return len(self._state)
