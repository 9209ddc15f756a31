"""What the sync and asyncio limiters share: choosing rules, building checks, deciding."""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from meterline.clock import Clock, system_clock
from meterline.errors import ConfigurationError
from meterline.ratelimit.adaptive import AdaptiveFactor
from meterline.ratelimit.algorithms import Check, Outcome
from meterline.ratelimit.breaker import CircuitBreaker
from meterline.ratelimit.decision import Decision, RuleState, choose
from meterline.ratelimit.exemptions import Exemption
from meterline.ratelimit.plans import Plan, PlanBook
from meterline.ratelimit.rules import Algorithm, FailurePolicy, Identity, Rule

log = logging.getLogger("meterline.ratelimit")

KEY_PREFIX = "ml"
TARGET_CACHE_SIZE = 100_000
CIRCUIT_OPEN = "circuit open"
Targets = tuple[tuple[Rule, str], ...]


def default_hash_tag(identity: Identity) -> str:
    """One hash tag for every key, so any set of tiers runs as one script on Cluster."""
    return "meterline"


@dataclass
class LimiterStats:
    """Counts of what the limiter did, for metrics."""

    decisions: int = 0
    denied: int = 0
    storage_errors: int = 0
    failed_open: int = 0
    failed_closed: int = 0
    exempted: int = 0
    by_code: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Prepared:
    """A decision about to be asked of storage."""

    now: float
    rules: list[Rule]
    checks: list[Check]
    token: str
    exempt: bool
    factor: float


class LimiterCore:
    """Rule selection and decision making, free of I/O; see :class:`RateLimiter`."""

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
        self.clock = clock
        self.breaker = breaker or CircuitBreaker()
        self.adaptive = adaptive
        self.hash_tag = hash_tag
        self.stats = LimiterStats()
        self._scaled: dict[tuple[int, float], Rule] = {}
        self._targets: dict[tuple[Identity, str | None, int], Targets] = {}
        # Decision tokens name leases and log entries: unique per process and across them.
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
        if isinstance(plan, Plan):
            return self.resolve(identity, self.request_rules(identity, plan))
        version = self.plans.version if isinstance(self.plans, PlanBook) else 0
        cache_key = (identity, plan, version)
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
        return tuple(
            # the algorithm is part of the key: changing a rule's algorithm starts afresh
            # instead of reading another algorithm's state
            (
                rule,
                f"{KEY_PREFIX}:{{{tag}}}:{rule.name}:{rule.algorithm.value}:{rule.subject(identity)}",
            )
            for rule in rules
            if rule.applies(identity)
        )

    def prepare(self, targets: Targets, cost: int, exemption: Exemption | None) -> Prepared:
        """Apply exemptions and the adaptive factor, and build the storage checks."""
        now = self.clock()
        factor = self.adaptive.value if self.adaptive is not None else 1.0
        chosen: list[Rule] = []
        checks: list[Check] = []
        exempt = False
        for rule, key in targets:
            if exemption is not None and exemption.covers(rule.name):
                exempt = True
                continue
            if factor < 1.0 and rule.adaptive:
                rule = self._effective(rule, factor)
            if rule.algorithm is Algorithm.FIXED_WINDOW:
                start, end = rule.span(now)
                check = Check(
                    rule.algorithm,
                    f"{key}:{round(start * 1000)}",
                    rule.limit,
                    end - start,
                    rule.limit,
                    cost,
                    start,
                    end,
                )
            else:
                capacity = rule.burst if rule.burst is not None else rule.limit
                check = Check(rule.algorithm, key, rule.limit, rule.window, capacity, cost)
            chosen.append(rule)
            checks.append(check)
        token = f"{self._token_prefix}{next(self._tokens)}"
        return Prepared(now, chosen, checks, token, exempt, factor)

    def request_rules(self, identity: Identity, plan: Plan | str | None) -> list[Rule]:
        """The limiter's own rules followed by the plan's per-request rules."""
        found = self.plan(identity, plan or identity.plan)
        return [*self.rules, *(found.rules if found is not None else ())]

    def decide(self, p: Prepared, allowed: bool, outcomes: list[Outcome]) -> Decision:
        """Turn storage outcomes into a :class:`Decision`."""
        states = [
            RuleState(r, r.limit, o.allowed, o.remaining, o.reset_at, o.retry_after)
            for r, o in zip(p.rules, outcomes, strict=True)
        ]
        return self._decision(p, allowed, states)

    def _decision(
        self, p: Prepared, allowed: bool, states: list[RuleState], degraded: bool = False
    ) -> Decision:
        head = choose(states)
        stats = self.stats
        stats.decisions += 1
        if p.exempt:
            stats.exempted += 1
        leases: tuple[str, ...] = ()
        if allowed and any(r.algorithm is Algorithm.CONCURRENCY for r in p.rules):
            leases = tuple(c.key for c in p.checks if c.algorithm is Algorithm.CONCURRENCY)
        if head is None:
            return Decision(True, 0, 0, p.now, 0.0, None, (), degraded, p.exempt, p.factor)
        decision = Decision(
            allowed,
            head.limit,
            head.remaining,
            head.reset_at,
            0.0 if allowed else head.retry_after,
            head.rule,
            tuple(states),
            degraded,
            p.exempt,
            p.factor,
            p.token,
            leases,
        )
        if not allowed:
            stats.denied += 1
            stats.by_code[decision.code] = stats.by_code.get(decision.code, 0) + 1
        return decision

    def fallback(self, p: Prepared, reason: str) -> Decision:
        """The decision of the rules' failure policies when storage cannot answer."""
        closed = [r for r in p.rules if r.on_error is FailurePolicy.CLOSED]
        wait = self.breaker.cooldown
        if closed:
            self.stats.failed_closed += 1
            states = [RuleState(r, r.limit, False, 0, p.now + wait, wait) for r in closed]
            if reason != CIRCUIT_OPEN:
                log.warning("rate limiter failing closed (%s) for %s", reason, closed[0].name)
            return self._decision(p, False, states, degraded=True)
        self.stats.failed_open += 1
        states = [RuleState(r, r.limit, True, r.limit, p.now, 0.0) for r in p.rules]
        if reason != CIRCUIT_OPEN:  # while the breaker is open, count without logging
            log.warning("rate limiter failing open (%s)", reason)
        return self._decision(p, True, states, degraded=True)

    def quota_rule(self, identity: Identity, name: str, plan: Plan | str) -> Rule | None:
        """The plan's quota ``name`` (``None``: unlimited)."""
        found = self.plan(identity, plan)
        return found.quotas.get(name) if found is not None else None
