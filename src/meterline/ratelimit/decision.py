"""What the limiter decided, and the HTTP headers that tell a client about it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from meterline.ratelimit.rules import Rule, policy_item


# Both are named tuples: built on every decision, they must cost next to nothing.
class RuleState(NamedTuple):
    """One rule's view of a request: its (effective) limit and what is left of it."""

    rule: Rule
    limit: int
    allowed: bool
    remaining: int
    reset_at: float
    retry_after: float


class Decision(NamedTuple):
    """The answer for one request (read-only).

    ``rule`` is the rule that decided: on a denial the denying rule with the longest wait,
    otherwise the rule with the least left (``None`` when no rule applied). ``limit``,
    ``remaining``, ``reset_at`` (unix seconds when that rule is whole again) and
    ``retry_after`` (seconds; 0 when allowed) are that rule's. ``states`` holds every
    rule that applied. ``degraded`` marks a decision taken by the failure policy because
    storage failed; ``exempt`` one where a signed exemption skipped rules; ``factor`` is
    the adaptive factor applied. ``token`` and ``leases`` let :meth:`RateLimiter.release`
    give concurrency slots back.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_at: float
    retry_after: float
    rule: Rule | None
    states: tuple[RuleState, ...] = ()
    degraded: bool = False
    exempt: bool = False
    factor: float = 1.0
    token: str = ""
    leases: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        """The error code of a denial: ``QUOTA_EXCEEDED`` for quotas, else rate limit."""
        if self.degraded and not self.allowed:
            return "RATE_LIMITER_UNAVAILABLE"
        if self.rule is not None and self.rule.quota:
            return "QUOTA_EXCEEDED"
        return "RATE_LIMIT_EXCEEDED"


def choose(states: Sequence[RuleState]) -> RuleState | None:
    """The state that speaks for a decision (see :class:`Decision`): the first denying
    state with the longest wait, else the first with the least left (the latest reset
    among equals)."""
    if len(states) == 1:
        return states[0]
    if not states:
        return None
    # plain loops: this runs on every multi-tier decision
    denied = None
    for s in states:
        if not s[2] and (denied is None or s[5] > denied[5]):
            denied = s
    if denied is not None:
        return denied
    head = states[0]
    for s in states:
        if s[3] < head[3] or (s[3] == head[3] and s[4] > head[4]):
            head = s
    return head


def _seconds(value: float) -> int:
    return max(0, math.ceil(value - 1e-9))


def _policy(state: RuleState) -> str:
    rule = state.rule
    return rule.policy if state.limit == rule.limit else policy_item(rule, state.limit)


def decision_headers(decision: Decision, now: float) -> list[tuple[str, str]]:
    """The rate-limit response headers for ``decision`` (empty when no rule applied).

    ``X-RateLimit-Limit/Remaining/Reset`` always, ``X-RateLimit-Retry-After`` and
    ``Retry-After`` on a denial, and the IETF ``RateLimit-Policy`` (every rule that
    applied) and ``RateLimit`` (the deciding rule) structured fields.
    """
    rule = decision.rule
    if rule is None:
        return []
    remaining = str(decision.remaining)
    reset_at = decision.reset_at
    states = decision.states
    # each rule's policy item is made once, with the rule (unless adaptive shrank it)
    policies = _policy(states[0]) if len(states) == 1 else ", ".join(map(_policy, states))
    headers = [
        ("X-RateLimit-Limit", str(decision.limit)),
        ("X-RateLimit-Remaining", remaining),
        ("X-RateLimit-Reset", str(math.ceil(reset_at))),
    ]
    if not decision.allowed:
        wait = str(max(1, _seconds(decision.retry_after)))
        headers += [("X-RateLimit-Retry-After", wait), ("Retry-After", wait)]
    headers.append(("RateLimit-Policy", policies))
    headers.append(("RateLimit", f'"{rule.name}";r={remaining};t={_seconds(reset_at - now)}'))
    if decision.factor < 1.0:
        headers.append(("X-RateLimit-Adaptive-Factor", f"{decision.factor:.2f}"))
    return headers
