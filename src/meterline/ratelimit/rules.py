"""Rules: what is limited, by how much, for whom, and what happens when storage fails."""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from fnmatch import translate
from typing import NamedTuple

from meterline.errors import ConfigurationError


class Algorithm(StrEnum):
    """The counting algorithms; each behaves identically in every storage."""

    FIXED_WINDOW = "fixed_window"
    SLIDING_LOG = "sliding_log"
    SLIDING_WINDOW = "sliding_window"
    TOKEN_BUCKET = "token_bucket"
    GCRA = "gcra"
    CONCURRENCY = "concurrency"


class Period(StrEnum):
    """Calendar periods (UTC) for quotas; a quota is a fixed window over one of them."""

    DAY = "day"
    MONTH = "month"


class FailurePolicy(StrEnum):
    """What a rule decides when its storage is down, slow, or its breaker is open."""

    OPEN = "open"
    CLOSED = "closed"


IDENTITY_FIELDS = ("org", "consumer", "ip", "endpoint")


class Identity(NamedTuple):
    """Who is asking and for what: the fields rules key their counters by.

    ``endpoint`` is the request path (matched against ``Rule.match``); ``plan`` names the
    plan whose rules apply on top of the limiter's own rules. A named tuple: immutable,
    and hashed in C, since identities key the limiter's rule cache.
    """

    org: str | None = None
    consumer: str | None = None
    ip: str | None = None
    endpoint: str | None = None
    method: str | None = None
    plan: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit: ``limit`` units per ``window`` seconds (or per calendar ``period``).

    ``per`` names the identity fields the counter is kept for (``()`` is one global
    counter, ``("org",)`` one per org, ``("org", "endpoint")`` one per org and path...);
    a rule applies to a request only when every field it is kept per is known and the
    path matches ``match`` (a glob, ``*`` for any) and the method is in ``methods`` (empty
    for any). ``burst`` is the bucket capacity of ``token_bucket`` and ``gcra`` (default
    ``limit``). ``quota`` rules answer ``QUOTA_EXCEEDED`` instead of
    ``RATE_LIMIT_EXCEEDED``. ``on_error`` decides when storage fails; ``adaptive`` rules
    shrink with the limiter's adaptive factor.

    Example:
        >>> Rule("org-hourly", 1000, 3600, algorithm=Algorithm.GCRA, burst=50, per=("org",))
    """

    name: str
    limit: int
    window: float = 0.0
    algorithm: Algorithm = Algorithm.FIXED_WINDOW
    per: tuple[str, ...] = ()
    burst: int | None = None
    period: Period | None = None
    match: str = "*"
    methods: frozenset[str] = frozenset()
    quota: bool = False
    on_error: FailurePolicy = FailurePolicy.OPEN
    adaptive: bool = False
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _everywhere: bool = field(init=False, repr=False, compare=False)
    key_head: str = field(init=False, repr=False, compare=False)
    """``name:algorithm:``, the start of this rule's counter keys after the hash tag."""
    policy: str = field(init=False, repr=False, compare=False)
    """This rule's item of the ``RateLimit-Policy`` header: ``"name";q=limit;w=seconds``."""

    def __post_init__(self) -> None:
        # accept plain strings from config files: "gcra", "day", "closed"
        object.__setattr__(self, "algorithm", Algorithm(self.algorithm))
        object.__setattr__(self, "on_error", FailurePolicy(self.on_error))
        if self.period is not None:
            object.__setattr__(self, "period", Period(self.period))
        if not self.name or ":" in self.name or "{" in self.name or "}" in self.name:
            raise ConfigurationError(f"rule name {self.name!r} must be non-empty, without : {{ }}")
        if self.limit < 0:
            raise ConfigurationError(f"rule {self.name}: limit must be >= 0")
        if self.period is None and not self.window > 0:
            raise ConfigurationError(f"rule {self.name}: window must be > 0 seconds")
        if self.period is not None and self.algorithm is not Algorithm.FIXED_WINDOW:
            raise ConfigurationError(f"rule {self.name}: a calendar period needs fixed_window")
        if self.burst is not None and self.burst < 1:
            raise ConfigurationError(f"rule {self.name}: burst must be >= 1")
        for name in self.per:
            if name not in IDENTITY_FIELDS:
                raise ConfigurationError(f"rule {self.name}: unknown per field {name!r}")
        object.__setattr__(self, "_pattern", re.compile(translate(self.match)))
        object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))
        everywhere = not self.per and self.match == "*" and not self.methods
        object.__setattr__(self, "_everywhere", everywhere)
        object.__setattr__(self, "key_head", f"{self.name}:{self.algorithm.value}:")
        object.__setattr__(self, "policy", policy_item(self, self.limit))

    def applies(self, identity: Identity) -> bool:
        """Whether this rule counts a request from ``identity``."""
        if self._everywhere:
            return True
        for name in self.per:
            if getattr(identity, name) is None:
                return False
        if self.match != "*" and not self._pattern.match(identity.endpoint or ""):
            return False
        return not self.methods or (identity.method or "").upper() in self.methods

    def subject(self, identity: Identity) -> str:
        """The counter's identity part of the key, e.g. ``org=acme|ip=10.0.0.1``."""
        per = self.per
        if len(per) == 1:
            return f"{per[0]}={getattr(identity, per[0])}"
        return "|".join(f"{name}={getattr(identity, name)}" for name in per) or "*"

    def span(self, now: float) -> tuple[float, float]:
        """The fixed window ``[start, end)`` holding ``now`` (calendar for periods)."""
        if self.period is None:
            start = math.floor(now / self.window) * self.window
            return start, start + self.window
        day = datetime.fromtimestamp(now, tz=UTC)
        if self.period is Period.DAY:
            begin = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            return begin, begin + 86_400.0
        begin = datetime(day.year, day.month, 1, tzinfo=UTC).timestamp()
        days = calendar.monthrange(day.year, day.month)[1]
        return begin, begin + days * 86_400.0

    @property
    def policy_window(self) -> int:
        """The window in whole seconds, for the ``RateLimit-Policy`` header."""
        if self.period is Period.DAY:
            return 86_400
        if self.period is Period.MONTH:
            return 30 * 86_400
        return max(1, round(self.window))

    def scaled(self, factor: float) -> Rule:
        """This rule with its limit (and burst) multiplied by ``factor``, at least 1."""
        if factor >= 1.0:
            return self
        burst = None if self.burst is None else max(1, math.floor(self.burst * factor))
        return Rule(
            self.name,
            max(1, math.floor(self.limit * factor)),
            self.window,
            self.algorithm,
            self.per,
            burst,
            self.period,
            self.match,
            self.methods,
            self.quota,
            self.on_error,
            self.adaptive,
        )


def policy_item(rule: Rule, limit: int) -> str:
    """``rule``'s item of the ``RateLimit-Policy`` header with quota ``limit``."""
    return f'"{rule.name}";q={limit};w={rule.policy_window}'
