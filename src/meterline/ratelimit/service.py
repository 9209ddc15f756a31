"""Meterline's own API limiter: plans and persisted overrides, exemptions, quotas.

Used by the server (``meterline.api``); the library above it needs none of this.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from meterline.auth.tables import server_secrets
from meterline.clock import Clock, system_clock
from meterline.ratelimit import tables
from meterline.ratelimit.adaptive import AdaptiveFactor
from meterline.ratelimit.aio.limiter import RateLimiter
from meterline.ratelimit.aio.storage import MemoryStorage as AioMemoryStorage
from meterline.ratelimit.decision import Decision
from meterline.ratelimit.errors import ensure_allowed
from meterline.ratelimit.exemptions import ExemptionSigner
from meterline.ratelimit.limiter import RateLimiter as SyncRateLimiter
from meterline.ratelimit.plans import PlanBook, validate_override
from meterline.ratelimit.rules import Algorithm, Rule
from meterline.ratelimit.storage import Storage, storage_from_url

ANONYMOUS_RULE = Rule("anonymous-ip", 300, 60, Algorithm.SLIDING_WINDOW, per=("ip",))
"""Requests without valid credentials (e.g. token requests) are limited per client IP."""
SECRET_NAME = "ratelimit_exemption"


class RateLimitService:
    """The limiter on Meterline's API, keyed by the caller's org and plan.

    Overrides come from the config file (``ratelimit_config``) and from the metadata
    database (``/v2/admin/ratelimits``); a database override replaces the file's for the
    same org or consumer. Other code consumes quotas through :meth:`consume_quota`.
    """

    def __init__(
        self,
        engine: Engine,
        storage_url: str = "memory://",
        *,
        config: Path | None = None,
        clock: Clock = system_clock,
        adaptive_latency_ms: float | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        # "off" disables enforcement on the API (quotas still count, in memory)
        self.enabled = storage_url != "off"
        storage_url = storage_url if self.enabled else "memory://"
        self.book = PlanBook.from_file(config) if config is not None else PlanBook()
        self._load_overrides()
        adaptive = (
            AdaptiveFactor(target_latency_ms=adaptive_latency_ms, clock=clock)
            if adaptive_latency_ms is not None
            else None
        )
        self.limiter = RateLimiter(
            storage_url, [ANONYMOUS_RULE], plans=self.book, clock=clock, adaptive=adaptive
        )
        self.quotas = SyncRateLimiter(self._sync_storage(storage_url), plans=self.book, clock=clock)
        """For synchronous callers (report generation): same plans, same counters."""
        self.exemptions = ExemptionSigner(self._secret(), clock)
        self.refused = Counter(
            "meterline_ratelimit_refused_total",
            "Requests refused by the rate limiter, by rule and code",
            ["rule", "code"],
            registry=registry,
        )
        stats = self.limiter.stats
        errors = Gauge(
            "meterline_ratelimit_storage_errors",
            "Rate-limit storage failures since start (the failure policy decided)",
            registry=registry,
        )
        errors.set_function(lambda: float(stats.storage_errors))
        factor = Gauge(
            "meterline_ratelimit_adaptive_factor",
            "The factor adaptive limits are multiplied by (1 when not overloaded)",
            registry=registry,
        )
        factor.set_function(lambda: adaptive.value if adaptive is not None else 1.0)

    def _sync_storage(self, storage_url: str) -> Storage:
        # The counters of the asyncio limiter, seen from sync code: the very dict in
        # memory, or the same Redis (keys are the same in both limiters).
        storage = self.limiter.storage
        if isinstance(storage, AioMemoryStorage):
            return storage.sync
        return storage_from_url(storage_url)

    def _secret(self) -> str:
        md = server_secrets
        with self.engine.begin() as conn:
            row = conn.execute(select(md.c.value).where(md.c.name == SECRET_NAME)).first()
            if row is None:
                try:
                    value = secrets.token_urlsafe(48)
                    conn.execute(md.insert().values(name=SECRET_NAME, value=value))
                except IntegrityError:
                    pass
                row = conn.execute(select(md.c.value).where(md.c.name == SECRET_NAME)).first()
        assert row is not None
        return str(row[0])

    def _load_overrides(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tables.overrides)).mappings().all()
        for row in rows:
            consumer = row["consumer_id"] or None
            self.book.set_override(row["org_id"], consumer, json.loads(row["fields"]))

    async def consume_quota(
        self, org_id: str, name: str, plan: str, *, cost: int = 1, consumer: str | None = None
    ) -> Decision:
        """Consume ``cost`` of the org's quota ``name`` (``"reports"``: ``reports_per_day``);
        raises ``RateLimitedError`` (429 ``QUOTA_EXCEEDED``) when it is used up."""
        decision = await self.limiter.consume_quota(
            org_id, name, plan, cost=cost, consumer=consumer
        )
        return ensure_allowed(decision, self.clock())

    def set_override(self, org_id: str, consumer_id: str | None, fields: dict[str, Any]) -> None:
        """Persist and apply an override (replacing any previous one for the same target)."""
        clean = validate_override(fields)
        key = consumer_id or tables.ORG_WIDE
        row = {
            "org_id": org_id,
            "consumer_id": key,
            "fields": json.dumps(clean),
            "updated_at": datetime.fromtimestamp(self.clock(), tz=UTC),
        }
        with self.engine.begin() as conn:
            conn.execute(
                delete(tables.overrides).where(
                    (tables.overrides.c.org_id == org_id) & (tables.overrides.c.consumer_id == key)
                )
            )
            conn.execute(tables.overrides.insert().values(**row))
        self.book.set_override(org_id, consumer_id, clean)

    def remove_override(self, org_id: str, consumer_id: str | None) -> bool:
        """Delete an override; returns whether one existed."""
        key = consumer_id or tables.ORG_WIDE
        with self.engine.begin() as conn:
            conn.execute(
                delete(tables.overrides).where(
                    (tables.overrides.c.org_id == org_id) & (tables.overrides.c.consumer_id == key)
                )
            )
        return self.book.remove_override(org_id, consumer_id)

    def effective(self, plan: str, org_id: str, consumer_id: str | None = None) -> dict[str, Any]:
        """The limits that apply to the org (or consumer), after every override."""
        limits = self.book.limits_for(plan, org_id, consumer_id)
        return {
            "plan": plan,
            "requests_per_hour": limits.requests_per_hour,
            "burst": limits.burst,
            "reports_per_day": limits.reports_per_day,
        }

    def overrides_of(self, org_id: str | None) -> list[dict[str, Any]]:
        """Overrides of one org (``None``: all orgs)."""
        return [o for o in self.book.overrides() if org_id is None or o["org_id"] == org_id]

    async def close(self) -> None:
        """Close the limiters' storages."""
        await self.limiter.close()
        self.quotas.close()
