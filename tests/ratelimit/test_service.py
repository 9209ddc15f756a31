"""The server's limiter service: persisted overrides and the report quota API."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from meterline.clock import FrozenClock
from meterline.metadb import engine_from_url, migrate
from meterline.ratelimit.errors import RateLimitedError
from meterline.ratelimit.service import RateLimitService
from tests.ratelimit.aio_run import run

T0 = 1_699_999_200.0


def service(path: Path, clock: FrozenClock) -> RateLimitService:
    engine = engine_from_url(f"sqlite:///{path / 'meta.db'}")
    migrate(engine)
    return RateLimitService(engine, clock=clock, registry=CollectorRegistry())


def test_report_quota_raises_quota_exceeded_with_headers(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    svc = service(tmp_path, clock)

    async def main() -> None:
        for _ in range(10):
            await svc.consume_quota("acme", "reports", "basic")
        with pytest.raises(RateLimitedError) as caught:
            await svc.consume_quota("acme", "reports", "basic")
        assert caught.value.code == "QUOTA_EXCEEDED" and caught.value.status == 429
        assert caught.value.headers["X-RateLimit-Limit"] == "10"
        assert caught.value.headers["Retry-After"] == "7200"  # T0 is 22:00 UTC: until midnight
        for _ in range(50):
            await svc.consume_quota("big", "reports", "enterprise")  # unlimited

    run(main())


def test_overrides_survive_a_restart_and_exemption_secret_is_stable(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    first = service(tmp_path, clock)
    first.set_override("acme", None, {"reports_per_day": 2})
    first.set_override("acme", "batch", {"burst": 7})
    token = first.exemptions.issue("ops", ttl=60)
    again = service(tmp_path, clock)
    assert again.effective("basic", "acme")["reports_per_day"] == 2
    assert again.effective("basic", "acme", "batch")["burst"] == 7
    assert again.exemptions.verify(token, again_identity()) is not None
    assert again.remove_override("acme", "batch")
    assert service(tmp_path, clock).effective("basic", "acme", "batch")["burst"] == 50


def again_identity():  # type: ignore[no-untyped-def]
    from meterline.ratelimit import Identity

    return Identity(endpoint="/v2/x", method="GET")


def test_off_disables_enforcement_but_keeps_the_quota_api(tmp_path: Path) -> None:
    engine = engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(engine)
    svc = RateLimitService(engine, "off", clock=FrozenClock(T0), registry=CollectorRegistry())
    assert not svc.enabled
    assert run(svc.consume_quota("acme", "reports", "basic")).remaining == 9
