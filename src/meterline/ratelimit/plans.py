"""Plans as rules, and the book of plans and overrides that says which limits apply.

Precedence, most specific first: a consumer's override, then its org's override, then the
plan as configured (config file), then the built-in defaults of :mod:`meterline.plans`.
Each override may set any of ``requests_per_hour``, ``burst`` and ``reports_per_day``
(``None`` there meaning unlimited reports); unset fields fall through to the next level.
A consumer with an override gets its own request counter; everyone else in the org
shares the org's.
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from meterline.errors import ConfigurationError, ValidationError
from meterline.plans import DEFAULT_PLANS, PlanLimits
from meterline.ratelimit.rules import Algorithm, Period, Rule

OVERRIDE_FIELDS = ("requests_per_hour", "burst", "reports_per_day")
REQUESTS_RULE = "requests"
REPORTS_QUOTA = "reports"


@dataclass(frozen=True, slots=True)
class Plan:
    """A named set of rules checked on every request, and named quotas consumed on demand.

    Example:
        >>> Plan.from_limits("basic", DEFAULT_PLANS["basic"]).quotas["reports"].limit
        10
    """

    name: str
    rules: tuple[Rule, ...] = ()
    quotas: Mapping[str, Rule] = field(default_factory=dict)

    @classmethod
    def from_limits(cls, name: str, limits: PlanLimits, per: tuple[str, ...] = ("org",)) -> Plan:
        """The plan's request rule (GCRA: ``requests_per_hour`` with ``burst`` at once,
        adaptive) and its daily report quota (absent when unlimited)."""
        rules = (
            Rule(
                REQUESTS_RULE,
                limits.requests_per_hour,
                3600.0,
                Algorithm.GCRA,
                per=per,
                burst=limits.burst,
                adaptive=True,
            ),
        )
        quotas: dict[str, Rule] = {}
        if limits.reports_per_day is not None:
            quotas[REPORTS_QUOTA] = Rule(
                REPORTS_QUOTA, limits.reports_per_day, period=Period.DAY, per=per, quota=True
            )
        return cls(name, rules, quotas)


def validate_override(fields: Mapping[str, Any]) -> dict[str, int | None]:
    """A clean override from user input; raises :class:`ValidationError` on bad fields."""
    clean: dict[str, int | None] = {}
    for key, value in fields.items():
        if key not in OVERRIDE_FIELDS:
            raise ValidationError(f"unknown rate-limit field {key!r}", details=str(OVERRIDE_FIELDS))
        if value is None and key == "reports_per_day":
            clean[key] = None
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValidationError(f"{key!r} must be a non-negative integer")
        if key == "burst" and value < 1:
            raise ValidationError("'burst' must be at least 1")
        clean[key] = value
    return clean


class PlanBook:
    """Plans by name plus per-org and per-consumer overrides; thread-safe."""

    def __init__(self, plans: Mapping[str, PlanLimits] | None = None) -> None:
        self.plans: dict[str, PlanLimits] = {str(k): v for k, v in (plans or DEFAULT_PLANS).items()}
        self._orgs: dict[str, dict[str, int | None]] = {}
        self._consumers: dict[tuple[str, str], dict[str, int | None]] = {}
        self._cache: dict[tuple[str, str | None, str | None], Plan] = {}
        self._lock = threading.Lock()
        self.version = 0
        """Bumped on every change, so limiters drop what they cached."""

    @classmethod
    def from_file(cls, path: Path) -> PlanBook:
        """A book from a JSON or TOML file: ``{plans: {name: {...}}, orgs: {org: {...}},
        consumers: {"org/consumer": {...}}}``; plans not named keep their defaults."""
        text = path.read_text(encoding="utf-8")
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        book = cls()
        for name, fields in dict(data.get("plans", {})).items():
            base = book.plans.get(name, PlanLimits(30, 1_000, 50, 10))
            book.plans[name] = _merge(base, validate_override(fields))
        for org, fields in dict(data.get("orgs", {})).items():
            book.set_override(org, None, fields)
        for pair, fields in dict(data.get("consumers", {})).items():
            org, sep, consumer = str(pair).partition("/")
            if not sep:
                raise ConfigurationError(f"consumer override {pair!r} must be 'org/consumer'")
            book.set_override(org, consumer, fields)
        return book

    def set_override(self, org: str, consumer: str | None, fields: Mapping[str, Any]) -> None:
        """Set the override of ``org`` (or of one of its consumers)."""
        clean = validate_override(fields)
        with self._lock:
            if consumer is None:
                self._orgs[org] = clean
            else:
                self._consumers[(org, consumer)] = clean
            self._cache.clear()
            self.version += 1

    def remove_override(self, org: str, consumer: str | None) -> bool:
        """Drop an override; returns whether one existed."""
        with self._lock:
            self._cache.clear()
            self.version += 1
            if consumer is None:
                return self._orgs.pop(org, None) is not None
            return self._consumers.pop((org, consumer), None) is not None

    def overrides(self) -> list[dict[str, Any]]:
        """Every override as ``{org_id, consumer_id, **fields}``."""
        rows = [{"org_id": o, "consumer_id": None, **f} for o, f in self._orgs.items()]
        rows += [{"org_id": o, "consumer_id": c, **f} for (o, c), f in self._consumers.items()]
        return rows

    def limits_for(self, plan: str, org: str | None, consumer: str | None = None) -> PlanLimits:
        """The effective limits, by the precedence in this module's docstring."""
        try:
            limits = self.plans[plan]
        except KeyError:
            raise ConfigurationError(f"unknown plan {plan!r}") from None
        if org is not None:
            limits = _merge(limits, self._orgs.get(org, {}))
            if consumer is not None:
                limits = _merge(limits, self._consumers.get((org, consumer), {}))
        return limits

    def plan_for(self, plan: str, org: str | None, consumer: str | None = None) -> Plan:
        """The :class:`Plan` whose rules and quotas apply to this org (and consumer)."""
        own = consumer is not None and org is not None and (org, consumer) in self._consumers
        cache_key = (plan, org, consumer if own else None)
        found = self._cache.get(cache_key)
        if found is None:
            limits = self.limits_for(plan, org, consumer if own else None)
            per = ("org", "consumer") if own else ("org",)
            found = Plan.from_limits(plan, limits, per)
            with self._lock:
                self._cache[cache_key] = found
        return found


def _merge(limits: PlanLimits, fields: Mapping[str, int | None]) -> PlanLimits:
    changes: dict[str, Any] = {k: v for k, v in fields.items() if k in OVERRIDE_FIELDS}
    if changes.get("requests_per_hour", 1) is None or changes.get("burst", 1) is None:
        raise ConfigurationError("requests_per_hour and burst cannot be unlimited")
    return replace(limits, **changes)
