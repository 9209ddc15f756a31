"""What the sync and asyncio limiters share: choosing rules, building checks, deciding."""

from __future__ import annotations

import itertools
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from meterline.clock import Clock, system_clock
from meterline.errors import ConfigurationError
from meterline.ratelimit.adaptive import AdaptiveFactor
from meterline.ratelimit.algorithms import Check
from meterline.ratelimit.breaker import CircuitBreaker
from meterline.ratelimit.decision import Decision, RuleState, choose
from meterline.ratelimit.exemptions import Exemption
from meterline.ratelimit.plans import Plan, PlanBook
from meterline.ratelimit.rules import Algorithm, FailurePolicy, Identity, Rule
from meterline.ratelimit.storage.base import StorageError

log = logging.getLogger("meterline.ratelimit")

KEY_PREFIX = "ml"
TARGET_CACHE_SIZE = 100_000
CIRCUIT_OPEN = "circuit open"
_new = tuple.__new__  # builds a named tuple from a ready tuple, skipping its Python __new__


def default_hash_tag(identity: Identity) -> str:
    """One hash tag for every key, so any set of tiers runs as one script on Cluster."""
    return "meterline"


@dataclass(slots=True)
class LimiterStats:
    """Counts of what the limiter did, for metrics."""

    decisions: int = 0
    denied: int = 0
    storage_errors: int = 0
    failed_open: int = 0
    failed_closed: int = 0
    exempted: int = 0
    by_code: dict[str, int] = field(default_factory=dict)


class Prepared(NamedTuple):
    """A decision about to be asked of storage (at a time passed beside it)."""

    rules: Sequence[Rule]
    checks: Sequence[Check]
    token: str = ""
    exempt: bool = False
    factor: float = 1.0
    leases: bool = False


EMPTY = Prepared((), ())


class Targets:
    """The rules that apply to one identity and their counter keys, plus the prepared
    checks of a plain request (cost 1, no exemption, limits not shrunk) for the current
    fixed windows, reused until one of those windows ends."""

    __slots__ = ("rules", "keys", "adaptive", "leases", "logs", "named", "window")

    def __init__(
        self, rules: tuple[Rule, ...], keys: tuple[str, ...], names_log_entries: bool = True
    ) -> None:
        self.rules = rules
        self.keys = keys
        self.adaptive = self.leases = self.logs = False
        for rule in rules:
            self.adaptive = self.adaptive or rule.adaptive
            if rule.algorithm is Algorithm.CONCURRENCY:
                self.leases = True
            elif rule.algorithm is Algorithm.SLIDING_LOG:
                self.logs = True
        self.named = self.leases or (self.logs and names_log_entries)
        """Whether a decision needs a unique token (a lease, or a named log entry)."""
        self.window: tuple[float, float, Prepared, Sequence[Check]] = (
            math.inf,
            -math.inf,
            EMPTY,
            (),
        )
        """``(start, end, prepared, its checks)``: the plain request, valid for
        ``start <= now < end`` (the checks beside it spare the hot path a lookup)."""

    def __iter__(self) -> Iterator[tuple[Rule, str]]:
        return zip(self.rules, self.keys, strict=True)

    def __len__(self) -> int:
        return len(self.rules)

    def plain(self, now: float) -> Prepared:
        """A plain request at ``now`` (without its token; cached while its windows last)."""
        window = self.window
        if window[0] <= now < window[1]:
            return window[2]
        start, end = -math.inf, math.inf
        checks = []
        for rule, key in zip(self.rules, self.keys, strict=True):
            check = make_check(rule, key, now, 1)
            if check.algorithm is Algorithm.FIXED_WINDOW:
                start, end = max(start, check.start), min(end, check.end)
            checks.append(check)
        prepared = Prepared(self.rules, tuple(checks), "", False, 1.0, self.leases)
        self.window = (start, end, prepared, prepared.checks)  # one assignment: safe to race
        return prepared


def make_check(rule: Rule, key: str, now: float, cost: int) -> Check:
    """The storage check of ``rule`` on counter ``key`` at ``now``."""
    if rule.algorithm is Algorithm.FIXED_WINDOW:
        start, end = rule.span(now)
        return Check(
            rule.algorithm,
            f"{key}:{round(start * 1000)}",
            rule.limit,
            end - start,
            rule.limit,
            cost,
            rule,
            start,
            end,
        )
    capacity = rule.burst if rule.burst is not None else rule.limit
    return Check(rule.algorithm, key, rule.limit, rule.window, capacity, cost, rule)


class LimiterCore:
    """Rule selection and decision making, free of I/O; see :class:`RateLimiter`."""

    storage: Any  # the sync or asyncio storage of the subclass

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        plans: PlanBook | Mapping[str, Plan] | None = None,
        clock: Clock = system_clock,
        breaker: CircuitBreaker | None = None,
        adaptive: AdaptiveFactor | None = None,
        hash_tag: Callable[[Identity], str] = default_hash_tag,
    ) -> None:
        self.rules = tuple(rules)
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ConfigurationError("rule names must be unique")
        self.plans = plans if plans is not None else PlanBook()
        self._book = self.plans if isinstance(self.plans, PlanBook) else None
        # the same time, one Python call less per decision
        self.clock: Clock = time.time if clock is system_clock else clock
        self.breaker = breaker or CircuitBreaker()
        self.adaptive = adaptive
        self.hash_tag = hash_tag
        self.stats = LimiterStats()
        self._scaled: dict[tuple[int, float], Rule] = {}
        self._targets: dict[object, Targets] = {}
        self._version = -1
        # Decision tokens name concurrency leases, and log entries in storages that need
        # names for them: unique per process and across processes.
        self._token_prefix = secrets.token_hex(6)
        self._tokens = itertools.count()

    def plan(self, identity: Identity, plan: Plan | str | None) -> Plan | None:
        """The plan object for ``plan`` (a name is looked up for the identity)."""
        if isinstance(plan, Plan) or plan is None:
            return plan
        if isinstance(self.plans, PlanBook):
            return self.plans.plan_for(plan, identity.org, identity.consumer)
        return self.plans[plan]

    def _effective(self, rule: Rule, factor: float) -> Rule:
        if not rule.adaptive or factor >= 1.0:
            return rule
        key = (id(rule), factor)
        found = self._scaled.get(key)
        if found is None:
            if len(self._scaled) > 4096:
                self._scaled.clear()
            found = self._scaled[key] = rule.scaled(factor)
        return found

    def targets(self, identity: Identity, plan: Plan | str | None) -> Targets:
        """The rules that apply to a request and their counter keys (cached per identity)."""
        if plan is None:
            cache_key: object = identity
        elif isinstance(plan, Plan):
            return self.resolve(identity, self.request_rules(identity, plan))
        else:
            cache_key = (identity, plan)
        book = self._book
        if book is not None and book.version != self._version:
            self._targets.clear()  # an override changed: every cached rule set may be stale
            self._version = book.version
        found = self._targets.get(cache_key)
        if found is None:
            found = self.resolve(identity, self.request_rules(identity, plan))
            if len(self._targets) >= TARGET_CACHE_SIZE:
                self._targets.clear()
            self._targets[cache_key] = found
        return found

    def resolve(self, identity: Identity, rules: Iterable[Rule]) -> Targets:
        """The rules of ``rules`` that apply to ``identity``, each with its counter key."""
        tag = self.hash_tag(identity).replace("{", "").replace("}", "")
        head = f"{KEY_PREFIX}:{{{tag}}}:"
        chosen = tuple(rule for rule in rules if rule.applies(identity))
        # the algorithm is part of the key (see Rule.key_head): changing a rule's
        # algorithm starts afresh instead of reading another algorithm's state
        keys = tuple(f"{head}{rule.key_head}{rule.subject(identity)}" for rule in chosen)
        return Targets(chosen, keys, self.storage.NAMES_LOG_ENTRIES)

    def prepare_request(
        self, identity: Identity, plan: Plan | str | None, cost: int, exemption: Exemption | None
    ) -> tuple[float, Prepared]:
        """The time and the prepared checks of a request from ``identity``: :meth:`targets`
        and the plain case of :meth:`prepare` inlined, as this runs on every request."""
        book = self._book
        found = (
            self._targets.get(identity)
            if plan is None and (book is None or book.version == self._version)
            else None
        )
        targets = found if found is not None else self.targets(identity, plan)
        if cost != 1 or exemption is not None or self.adaptive is not None:
            return self.prepare(targets, cost, exemption)
        now = self.clock()
        window = targets.window
        p = window[2] if window[0] <= now < window[1] else targets.plain(now)
        if targets.named:
            p = _new(Prepared, (p[0], p[1], self.token(), False, 1.0, p[5]))
        return now, p

    def token(self) -> str:
        """A new decision token: unique in this process and across processes."""
        return f"{self._token_prefix}{next(self._tokens)}"

    def prepare(
        self, targets: Targets, cost: int, exemption: Exemption | None
    ) -> tuple[float, Prepared]:
        """Apply exemptions and the adaptive factor, and build the storage checks."""
        now = self.clock()
        adaptive = self.adaptive
        factor = adaptive.value if adaptive is not None else 1.0
        chosen: list[Rule] = []
        checks: list[Check] = []
        exempt = False
        for rule, key in targets:
            if exemption is not None and exemption.covers(rule.name):
                exempt = True
                continue
            if factor < 1.0 and rule.adaptive:
                rule = self._effective(rule, factor)
            chosen.append(rule)
            checks.append(make_check(rule, key, now, cost))
        token = self.token() if targets.named else ""
        return now, Prepared(chosen, checks, token, exempt, factor, targets.leases)

    def request_rules(self, identity: Identity, plan: Plan | str | None) -> list[Rule]:
        """The limiter's own rules followed by the plan's per-request rules."""
        found = self.plan(identity, plan or identity.plan)
        return [*self.rules, *(found.rules if found is not None else ())]

    def decide(
        self, p: Prepared, now: float, allowed: bool, states: Sequence[RuleState]
    ) -> Decision:
        """Turn the storage's answer (one state per check) into a :class:`Decision`."""
        if allowed and len(states) == 1 and not p.exempt:
            head = states[0]
            self.stats.decisions += 1
            return _new(
                Decision,
                (
                    True,
                    head[1],
                    head[3],
                    head[4],
                    0.0,
                    head[0],
                    (head,),
                    False,
                    False,
                    p.factor,
                    p.token,
                    self._leases(p) if p.leases else (),
                ),
            )
        return self._decision(p, now, allowed, tuple(states))

    @staticmethod
    def _leases(p: Prepared) -> tuple[str, ...]:
        return tuple(c.key for c in p.checks if c.algorithm is Algorithm.CONCURRENCY)

    def _decision(
        self,
        p: Prepared,
        now: float,
        allowed: bool,
        states: tuple[RuleState, ...],
        degraded: bool = False,
    ) -> Decision:
        head = choose(states)
        stats = self.stats
        stats.decisions += 1
        if p.exempt:
            stats.exempted += 1
        leases = self._leases(p) if allowed and p.leases else ()
        if head is None:
            return Decision(True, 0, 0, now, 0.0, None, (), degraded, p.exempt, p.factor)
        decision: Decision = _new(
            Decision,
            (
                allowed,
                head.limit,
                head.remaining,
                head.reset_at,
                0.0 if allowed else head.retry_after,
                head.rule,
                states,
                degraded,
                p.exempt,
                p.factor,
                p.token,
                leases,
            ),
        )
        if not allowed:
            stats.denied += 1
            stats.by_code[decision.code] = stats.by_code.get(decision.code, 0) + 1
        return decision

    def failed(self, p: Prepared, now: float, exc: StorageError) -> Decision:
        """Count and log a storage failure, and decide by the rules' failure policies."""
        self.stats.storage_errors += 1
        self.breaker.failure()
        log.warning("rate-limit storage error: %s (%s)", exc, exc.details)
        return self.fallback(p, now, "storage error")

    def fallback(self, p: Prepared, now: float, reason: str) -> Decision:
        """The decision of the rules' failure policies when storage cannot answer."""
        closed = [r for r in p.rules if r.on_error is FailurePolicy.CLOSED]
        wait = self.breaker.cooldown
        if closed:
            self.stats.failed_closed += 1
            states = tuple(RuleState(r, r.limit, False, 0, now + wait, wait) for r in closed)
            if reason != CIRCUIT_OPEN:
                log.warning("rate limiter failing closed (%s) for %s", reason, closed[0].name)
            return self._decision(p, now, False, states, degraded=True)
        self.stats.failed_open += 1
        states = tuple(RuleState(r, r.limit, True, r.limit, now, 0.0) for r in p.rules)
        if reason != CIRCUIT_OPEN:  # while the breaker is open, count without logging
            log.warning("rate limiter failing open (%s)", reason)
        return self._decision(p, now, True, states, degraded=True)

    def quota_rule(self, identity: Identity, name: str, plan: Plan | str) -> Rule | None:
        """The plan's quota ``name`` (``None``: unlimited)."""
        found = self.plan(identity, plan)
        return found.quotas.get(name) if found is not None else None
