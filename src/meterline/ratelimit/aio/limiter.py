"""The asyncio rate limiter, the twin of :class:`meterline.ratelimit.RateLimiter`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from meterline.ratelimit.aio.storage import Storage, storage_from_url
from meterline.ratelimit.core import CIRCUIT_OPEN, LimiterCore, Prepared
from meterline.ratelimit.decision import Decision
from meterline.ratelimit.exemptions import Exemption
from meterline.ratelimit.plans import Plan
from meterline.ratelimit.rules import Identity, Rule
from meterline.ratelimit.storage.base import StorageError


class RateLimiter(LimiterCore):
    """Same rules, decisions and failure policy as the sync limiter, awaited.

    Example:
        >>> limiter = RateLimiter("redis://localhost:6379/0", [Rule("ip", 100, 60, per=("ip",))])
        >>> decision = await limiter.hit(Identity(ip="203.0.113.9"))
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

    async def _run(self, now: float, p: Prepared, consume: bool) -> Decision:
        if not p.checks:
            return self.decide(p, now, True, ())
        breaker = self.breaker
        if not breaker.clean and not breaker.allow():
            return self.fallback(p, now, CIRCUIT_OPEN)
        try:
            allowed, states = await self.storage.apply(now, p.checks, p.token, consume)
        except StorageError as exc:
            return self.failed(p, now, exc)
        if not breaker.clean:
            breaker.success()
        return self.decide(p, now, allowed, states)

    async def hit(
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
            # the plain request of a known identity (see the sync limiter's hot path)
            now = self.clock()
            window = targets.window
            if window[0] <= now < window[1]:
                p, checks = window[2], window[3]
            else:
                p = targets.plain(now)
                checks = p.checks
            if checks:
                if targets.named:
                    p = p._replace(token=self.token())
                try:
                    allowed, states = await self.storage.apply(now, checks, p.token, True)
                except StorageError as exc:
                    return self.failed(p, now, exc)
                return self.decide(p, now, allowed, states)
        now, p = self.prepare_request(identity, plan, cost, exemption)
        if p.checks and self.breaker.clean:  # the hot path of :meth:`_run`
            try:
                allowed, states = await self.storage.apply(now, p.checks, p.token, True)
            except StorageError as exc:
                return self.failed(p, now, exc)
            return self.decide(p, now, allowed, states)
        return await self._run(now, p, True)

    async def peek(
        self, identity: Identity, *, cost: int = 1, plan: Plan | str | None = None
    ) -> Decision:
        """What :meth:`hit` would decide, without consuming anything."""
        return await self._run(*self.prepare_request(identity, plan, cost, None), False)

    async def check_rules(
        self, identity: Identity, rules: Sequence[Rule], *, cost: int = 1, consume: bool = True
    ) -> Decision:
        """Decide against exactly ``rules`` (those that apply to ``identity``)."""
        return await self._run(*self.prepare(self.resolve(identity, rules), cost, None), consume)

    async def consume_quota(
        self,
        org_id: str,
        name: str,
        plan: Plan | str,
        *,
        cost: int = 1,
        consumer: str | None = None,
    ) -> Decision:
        """Consume ``cost`` units of the plan's quota ``name`` for the org (see the sync
        twin); denials carry ``QUOTA_EXCEEDED``."""
        identity = Identity(org=org_id, consumer=consumer)
        rule = self.quota_rule(identity, name, plan)
        return await self.check_rules(identity, [rule] if rule is not None else [], cost=cost)

    async def release(self, decision: Decision) -> None:
        """Give back the concurrency slots ``decision`` holds."""
        for key in decision.leases:
            try:
                await self.storage.release(key, decision.token)
            except StorageError:
                self.stats.storage_errors += 1  # the lease expires on its own

    async def close(self) -> None:
        """Close the storage."""
        await self.storage.close()
