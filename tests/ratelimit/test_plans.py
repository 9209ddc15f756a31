"""Plans from the seed, overrides and their precedence, config files, quotas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meterline.clock import FrozenClock
from meterline.errors import ConfigurationError, ValidationError
from meterline.plans import DEFAULT_PLANS, PlanName
from meterline.ratelimit import FailurePolicy, Identity, Period, Plan, PlanBook, RateLimiter, Rule
from meterline.ratelimit.breaker import CircuitBreaker

T0 = 1_699_999_200.0


@pytest.mark.parametrize(
    ("plan", "hourly", "burst", "reports"),
    [
        ("basic", 1_000, 50, 10),
        ("professional", 10_000, 200, 100),
        ("enterprise", 100_000, 1_000, None),
    ],
)
def test_seed_plans(plan: str, hourly: int, burst: int, reports: int | None) -> None:
    p = Plan.from_limits(plan, DEFAULT_PLANS[PlanName(plan)])
    assert (p.rules[0].limit, p.rules[0].window, p.rules[0].burst) == (hourly, 3600, burst)
    assert (p.quotas["reports"].limit if reports is not None else None) == reports
    assert reports is not None or "reports" not in p.quotas


def test_plan_burst_then_hourly_rate() -> None:
    clock = FrozenClock(T0)
    limiter = RateLimiter("memory://", plans=PlanBook(), clock=clock)
    acme = Identity(org="acme", plan="basic")
    assert sum(limiter.hit(acme).allowed for _ in range(60)) == 50
    clock.advance(3.6)  # 1,000 per hour: one more every 3.6 s
    assert [limiter.hit(acme).allowed for _ in range(2)] == [True, False]
    assert limiter.hit(Identity(org="other", plan="basic")).allowed


def test_report_quota_per_day_and_unlimited_enterprise() -> None:
    clock = FrozenClock(T0)
    limiter = RateLimiter("memory://", plans=PlanBook(), clock=clock)
    basic = [limiter.consume_quota("acme", "reports", "basic") for _ in range(11)]
    assert [d.allowed for d in basic] == [True] * 10 + [False]
    assert basic[-1].code == "QUOTA_EXCEEDED" and basic[-1].limit == 10
    assert all(limiter.consume_quota("big", "reports", "enterprise").allowed for _ in range(500))
    clock.advance(86_400)
    assert limiter.consume_quota("acme", "reports", "basic").allowed


def test_precedence_consumer_over_org_over_file_over_defaults(tmp_path: Path) -> None:
    config = tmp_path / "limits.json"
    config.write_text(
        json.dumps(
            {
                "plans": {"basic": {"requests_per_hour": 2_000}},
                "orgs": {"acme": {"burst": 70, "reports_per_day": None}},
                "consumers": {"acme/batch": {"burst": 5}},
            }
        )
    )
    book = PlanBook.from_file(config)
    assert book.limits_for("basic", "other").requests_per_hour == 2_000  # file over default
    org = book.limits_for("basic", "acme")
    assert (org.requests_per_hour, org.burst, org.reports_per_day) == (2_000, 70, None)
    consumer = book.limits_for("basic", "acme", "batch")
    assert (consumer.burst, consumer.requests_per_hour) == (5, 2_000)
    assert book.plan_for("basic", "acme", "batch").rules[0].per == ("org", "consumer")
    assert book.plan_for("basic", "acme", "someone").rules[0].per == ("org",)
    assert "reports" not in book.plan_for("basic", "acme").quotas
    book.set_override("acme", None, {"burst": 80})
    assert book.limits_for("basic", "acme").burst == 80  # replaced, not merged with file
    assert book.remove_override("acme", "batch")
    assert book.limits_for("basic", "acme", "batch").burst == 80


def test_toml_config_and_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "limits.toml"
    config.write_text("[plans.basic]\nburst = 9\n[orgs.acme]\nrequests_per_hour = 5\n")
    book = PlanBook.from_file(config)
    assert book.limits_for("basic", "acme").burst == 9
    with pytest.raises(ValidationError):
        book.set_override("acme", None, {"requests": 5})
    with pytest.raises(ValidationError):
        book.set_override("acme", None, {"burst": 0})
    with pytest.raises(ConfigurationError):
        book.limits_for("gold", "acme")
    with pytest.raises(ConfigurationError):
        Rule("bad:name", 1, 1)
    with pytest.raises(ConfigurationError):
        Rule("x", 1, 1, per=("tenant",))


def test_breaker_half_open_probe() -> None:
    clock = FrozenClock(0.0)
    breaker = CircuitBreaker(failures=2, cooldown=1.0, clock=clock)
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow() and breaker.state == "open"
    clock.advance(1.0)
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def test_rules_accept_plain_strings_from_config() -> None:
    rule = Rule("q", 5, algorithm="fixed_window", period="day", on_error="closed")  # type: ignore[arg-type]
    assert rule.period is Period.DAY and rule.on_error is FailurePolicy.CLOSED
    with pytest.raises(ValueError):
        Rule("q", 5, 60, algorithm="leaky")  # type: ignore[arg-type]
