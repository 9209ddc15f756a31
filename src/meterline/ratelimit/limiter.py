"""The synchronous rate limiter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from meterline.ratelimit.core import CIRCUIT_OPEN, LimiterCore, Prepared, _new
from meterline.ratelimit.decision import Decision
from meterline.ratelimit.exemptions import Exemption
from meterline.ratelimit.plans import Plan
from meterline.ratelimit.rules import Identity, Rule
from meterline.ratelimit.storage import Storage, StorageError, storage_from_url


class RateLimiter(LimiterCore):
    """Checks and consumes every applicable rule of a request atomically.

    ``storage`` is a :class:`Storage` or a URL (``memory://``, ``redis://host:6379/0``).
    Rules apply to every request they match; a plan (by name through the ``plans`` book,
    or a :class:`Plan`) adds its rules. When storage fails or its circuit breaker is open
    the rules' failure policies decide at once, and the failure is logged and counted in
    :attr:`stats`.

    Example:
        >>> limiter = RateLimiter("memory://", [Rule("per-ip", 100, 60, per=("ip",))])
        >>> decision = limiter.hit(Identity(ip="203.0.113.9"))
        >>> decision.allowed, decision.remaining
        (True, 99)
    """

    def __init__(
        self, storage: Storage | str = "memory://", rules: Iterable[Rule] = (), **options: Any
    ) -> None:
        timeout = options.pop("timeout", None)
        extra = {} if timeout is None else {"timeout": timeout}
        if not isinstance(storage, Storage):
            storage = storage_from_url(storage, **extra)
        self.storage = storage
        super().__init__(rules, **options)

    def _run(self, now: float, p: Prepared, consume: bool) -> Decision:
        if not p.checks:
            return self.decide(p, now, True, ())
        breaker = self.breaker
        if not breaker.clean and not breaker.allow():
            return self.fallback(p, now, CIRCUIT_OPEN)
        try:
            allowed, states = self.storage.apply(now, p.checks, p.token, consume)
        except StorageError as exc:
            return self.failed(p, now, exc)
        if not breaker.clean:
            breaker.success()
        return self.decide(p, now, allowed, states)

    def hit(
        self,
        identity: Identity,
        *,
        cost: int = 1,
        plan: Plan | str | None = None,
        exemption: Exemption | None = None,
    ) -> Decision:
        """Decide a request and, if every rule allows it, consume ``cost`` from each."""
        book = self._book
        targets = (
            self._targets.get(identity)
            if plan is None
            and cost == 1
            and exemption is None
            and self.adaptive is None
            and (book is None or book.version == self._version)
            else None
        )
        if targets is not None and self.breaker.clean:
            # The plain request of a known identity: :meth:`prepare_request`, the storage
            # call and :meth:`decide` inlined, as this runs on every request.
            now = self.clock()
            window = targets.window
            if window[0] <= now < window[1]:
                p, checks = window[2], window[3]
            else:
                p = targets.plain(now)
                checks = p.checks
            if not checks:
                return self.decide(p, now, True, ())
            token = self.token() if targets.named else ""
            try:
                allowed, states = self.storage.apply(now, checks, token, True)
            except StorageError as exc:
                return self.failed(p._replace(token=token), now, exc)
            if allowed and len(states) == 1 and not targets.leases:
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
                        states if type(states) is tuple else (head,),
                        False,
                        False,
                        1.0,
                        token,
                        (),
                    ),
                )
            return self.decide(p._replace(token=token) if token else p, now, allowed, states)
        now, p = self.prepare_request(identity, plan, cost, exemption)
        if p.checks and self.breaker.clean:
            try:
                allowed, states = self.storage.apply(now, p.checks, p.token, True)
            except StorageError as exc:
                return self.failed(p, now, exc)
            return self.decide(p, now, allowed, states)
        return self._run(now, p, True)

    def peek(
        self, identity: Identity, *, cost: int = 1, plan: Plan | str | None = None
    ) -> Decision:
        """What :meth:`hit` would decide, without consuming anything."""
        return self._run(*self.prepare_request(identity, plan, cost, None), False)

    def check_rules(
        self, identity: Identity, rules: Sequence[Rule], *, cost: int = 1, consume: bool = True
    ) -> Decision:
        """Decide against exactly ``rules`` (those that apply to ``identity``)."""
        return self._run(*self.prepare(self.resolve(identity, rules), cost, None), consume)

    def consume_quota(
        self,
        org_id: str,
        name: str,
        plan: Plan | str,
        *,
        cost: int = 1,
        consumer: str | None = None,
    ) -> Decision:
        """Consume ``cost`` units of the plan's quota ``name`` (e.g. ``"reports"``) for the
        org; a plan without that quota is unlimited. Denials carry ``QUOTA_EXCEEDED``."""
        identity = Identity(org=org_id, consumer=consumer)
        rule = self.quota_rule(identity, name, plan)
        return self.check_rules(identity, [rule] if rule is not None else [], cost=cost)

    def release(self, decision: Decision) -> None:
        """Give back the concurrency slots ``decision`` holds (call when the request ends)."""
        for key in decision.leases:
            try:
                self.storage.release(key, decision.token)
            except StorageError:
                self.stats.storage_errors += 1  # the lease expires on its own

    def close(self) -> None:
        """Close the storage."""
        self.storage.close()
