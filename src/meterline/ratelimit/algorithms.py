"""The counting algorithms as pure functions over a counter's state.

Each function takes the stored state (``None`` when absent), a :class:`Check` and the
time, and returns the :class:`RuleState`, the state to store if the decision consumes, and
when that state may be forgotten. The new state may be a callable ("commit step") that
mutates the stored container in place and returns it, so logs stay ``O(1)`` per hit.
``resources/check_and_consume.lua`` is the same arithmetic for Redis, step for step
(same float operations, same rounding), so both storages decide identically; the
conformance suite holds them to it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from meterline.ratelimit.decision import RuleState
from meterline.ratelimit.rules import Algorithm, Rule

EPSILON = 1e-9
"""Float slack when turning a fractional allowance into whole units."""


@dataclass(slots=True)
class Check:
    """One rule applied to one counter: the unit of work a storage evaluates.

    ``capacity`` is the bucket size (``burst`` or ``limit``); ``start``/``end`` bound the
    window of fixed windows (already part of ``key``).
    """

    algorithm: Algorithm
    key: str
    limit: int
    window: float
    capacity: int
    cost: int
    rule: Rule
    start: float = 0.0
    end: float = 0.0
    step: Step = field(init=False, repr=False, compare=False)
    counter: bool = field(init=False, repr=False, compare=False)
    """A fixed window with room for requests: a plain counter, which a storage may
    update without calling :attr:`step` (same arithmetic as :func:`fixed_window`)."""
    log: bool = field(init=False, repr=False, compare=False)
    """A sliding log with room for requests, which a storage may likewise update in
    place (same arithmetic as :func:`sliding_log`)."""
    cell: Any = field(default=None, init=False, repr=False, compare=False)
    """The memory storage's counter (or log) for this check, linked on use so the hot
    path skips the lookup by key; valid only for the storage in :attr:`cell_owner`."""
    cell_owner: Any = field(default=None, init=False, repr=False, compare=False)
    encoded: Any = field(default=None, init=False, repr=False, compare=False)
    """What a storage derived from this check once (the Redis storage: its packed bytes);
    checks are reused by the limiter while their window lasts."""

    def __post_init__(self) -> None:
        self.step = STEPS[self.algorithm] if self.limit > 0 else deny_all
        self.counter = self.step is fixed_window
        self.log = self.step is sliding_log


_state: Callable[[tuple[Rule, int, bool, int, float, float]], RuleState] = partial(
    tuple.__new__, RuleState
)
"""``RuleState`` from a ready tuple without its Python-level ``__new__`` (allowed paths
are hot)."""

Step = Callable[[Any, Check, float, str], tuple[RuleState, Any, float]]


def _floor(value: float) -> int:
    return max(0, math.floor(value + EPSILON))


def fixed_window(
    state: int | None, c: Check, now: float, token: str
) -> tuple[RuleState, Any, float]:
    """A counter per window; allowed while ``count + cost <= limit``."""
    count = state or 0
    if count + c.cost <= c.limit:
        return (
            _state((c.rule, c.limit, True, c.limit - count - c.cost, c.end, 0.0)),
            count + c.cost,
            c.end,
        )
    return (
        RuleState(c.rule, c.limit, False, max(0, c.limit - count), c.end, c.end - now),
        state,
        c.end,
    )


def _log_commit(entries: deque[float], now: float, cost: int) -> deque[float]:
    if cost == 1:
        entries.append(now)
    else:
        entries.extend([now] * cost)
    return entries


def sliding_log(
    state: deque[float] | None, c: Check, now: float, token: str
) -> tuple[RuleState, Any, float]:
    """Every admitted unit's time in the last ``window`` seconds; exact, ``O(limit)`` memory.

    Expired entries are dropped in place (that changes no decision); new entries are
    added only by the returned commit step.
    """
    entries: deque[float] = deque() if state is None else state
    horizon = now - c.window
    while entries and entries[0] <= horizon:
        entries.popleft()
    n = len(entries)
    if n + c.cost <= c.limit:
        commit = partial(_log_commit, entries, now, c.cost)
        return (
            _state((c.rule, c.limit, True, c.limit - n - c.cost, now + c.window, 0.0)),
            commit,
            now + c.window,
        )
    # ``k`` oldest entries must leave the window before ``cost`` more fit.
    k = n + c.cost - c.limit
    retry = c.window if c.cost > c.limit else entries[k - 1] + c.window - now
    reset = entries[-1] + c.window if n else now + c.window
    return RuleState(c.rule, c.limit, False, max(0, c.limit - n), reset, retry), state, reset


def sliding_window(
    state: tuple[int, int, int] | None, c: Check, now: float, token: str
) -> tuple[RuleState, Any, float]:
    """Two fixed windows, the previous one weighted by how much of it still overlaps."""
    w = c.window
    index = math.floor(now / w)
    cur = prev = 0
    if state is not None:
        if state[0] == index:
            cur, prev = state[1], state[2]
        elif state[0] == index - 1:
            prev = state[1]
    start = index * w
    elapsed = now - start
    estimate = prev * (1 - elapsed / w) + cur
    expires = start + 2 * w
    if estimate + c.cost <= c.limit:
        remaining = _floor(c.limit - estimate - c.cost)
        return (
            _state((c.rule, c.limit, True, remaining, expires, 0.0)),
            (index, cur + c.cost, prev),
            expires,
        )
    if c.cost > c.limit:
        retry = expires - now
    elif cur + c.cost <= c.limit and prev > 0:
        retry = start + w * (1 - (c.limit - cur - c.cost) / prev) - now
    elif cur == 0:
        retry = start + w - now
    else:
        retry = start + w + max(0.0, w * (1 - (c.limit - c.cost) / cur)) - now
    reset = expires if cur > 0 else start + w
    return (
        RuleState(c.rule, c.limit, False, _floor(c.limit - estimate), reset, max(0.0, retry)),
        state,
        expires,
    )


def token_bucket(
    state: tuple[float, float] | None, c: Check, now: float, token: str
) -> tuple[RuleState, Any, float]:
    """``capacity`` tokens refilled at ``limit / window`` per second; a unit takes one."""
    rate = c.limit / c.window
    if state is None:
        tokens = float(c.capacity)
    else:
        tokens = min(float(c.capacity), state[0] + max(0.0, now - state[1]) * rate)
    if tokens >= c.cost:
        left = tokens - c.cost
        reset = now + (c.capacity - left) / rate
        return _state((c.rule, c.limit, True, _floor(left), reset, 0.0)), (left, now), reset
    retry = (c.cost - tokens) / rate if c.cost <= c.capacity else c.window
    reset = now + (c.capacity - tokens) / rate
    return RuleState(c.rule, c.limit, False, _floor(tokens), reset, retry), state, reset


def gcra(state: float | None, c: Check, now: float, token: str) -> tuple[RuleState, Any, float]:
    """The generic cell rate algorithm: one theoretical arrival time per counter."""
    interval = c.window / c.limit
    tolerance = c.capacity * interval
    tat = max(state if state is not None else now, now)
    new_tat = tat + c.cost * interval
    allow_at = new_tat - tolerance
    if now >= allow_at - EPSILON:
        remaining = _floor((tolerance - (new_tat - now)) / interval)
        return _state((c.rule, c.limit, True, remaining, new_tat, 0.0)), new_tat, new_tat
    remaining = _floor((tolerance - (tat - now)) / interval)
    return RuleState(c.rule, c.limit, False, remaining, tat, allow_at - now), state, tat


CONCURRENCY_RETRY = 1.0
"""Seconds a caller denied a concurrency slot is told to wait."""


def concurrency(
    state: dict[str, float] | None, c: Check, now: float, token: str
) -> tuple[RuleState, Any, float]:
    """Leases held by requests in flight; each expires after ``window`` if never released."""
    leases: dict[str, float] = {} if state is None else state
    for key in [k for k, t in leases.items() if t <= now]:
        del leases[key]  # expired leases change no decision
    n = len(leases)
    if n + 1 <= c.limit:

        def commit() -> dict[str, float]:
            leases[token] = now + c.window
            return leases

        return _state((c.rule, c.limit, True, c.limit - n - 1, now, 0.0)), commit, now + c.window
    expires = max(leases.values()) if leases else now + c.window
    return RuleState(c.rule, c.limit, False, 0, now, CONCURRENCY_RETRY), state, expires


STEPS: dict[Algorithm, Step] = {
    Algorithm.FIXED_WINDOW: fixed_window,
    Algorithm.SLIDING_LOG: sliding_log,
    Algorithm.SLIDING_WINDOW: sliding_window,
    Algorithm.TOKEN_BUCKET: token_bucket,
    Algorithm.GCRA: gcra,
    Algorithm.CONCURRENCY: concurrency,
}


def deny_all(state: Any, c: Check, now: float, token: str) -> tuple[RuleState, Any, float]:
    """A limit of 0 denies everything for one window."""
    end = c.end if c.algorithm is Algorithm.FIXED_WINDOW else now + c.window
    return RuleState(c.rule, c.limit, False, 0, end, end - now), state, end


def evaluate(state: Any, c: Check, now: float, token: str) -> tuple[RuleState, Any, float]:
    """Run ``c``'s algorithm (see :func:`deny_all` for a limit of 0)."""
    return c.step(state, c, now, token)
