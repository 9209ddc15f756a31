"""End to end on a real server process with a real Redis: limits, headers, records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import ServerProcess, Tenant, eventually, make_tenant
from tests.ratelimit.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[tuple[ServerProcess, Tenant, Tenant]]:
    data = tmp_path_factory.mktemp("ratelimited")
    operator = make_tenant(data, "operator", "enterprise", operator=True)
    basic = make_tenant(data, "smallco", "basic")
    server = ServerProcess(data, env={"METERLINE_RATELIMIT_URL": redis_server.url})
    server.start()
    yield server, operator, basic
    server.stop()


def test_basic_plan_gets_429_with_every_header_after_its_burst(
    limited: tuple[ServerProcess, Tenant, Tenant],
) -> None:
    server, operator, basic = limited
    token = server.token(basic.client_id, basic.client_secret)
    with server.client() as http:
        first = [http.get("/v2/admin/ratelimits", headers=bearer(token)) for _ in range(50)]
        assert [r.status_code for r in first] == [200] * 50  # burst 50 of the basic plan
        assert first[0].headers["X-RateLimit-Limit"] == "1000"  # requests per hour
        assert first[0].headers["X-RateLimit-Remaining"] == "49"
        assert first[0].headers["RateLimit-Policy"] == '"requests";q=1000;w=3600'
        assert first[0].json()["effective"]["burst"] == 50
        refused = next(
            r
            for r in (http.get("/v2/admin/ratelimits", headers=bearer(token)) for _ in range(20))
            if r.status_code == 429
        )
        h = refused.headers
        assert h["X-RateLimit-Limit"] == "1000" and h["X-RateLimit-Remaining"] == "0"
        assert int(h["X-RateLimit-Reset"]) > 0
        # One request drips back every 3.6 s (3,600 s / 1,000), less the time the burst took.
        assert h["Retry-After"] == h["X-RateLimit-Retry-After"]
        assert 1 <= int(h["Retry-After"]) <= 4
        assert h["RateLimit"].startswith('"requests";r=0;t=')
        assert h["RateLimit-Policy"] == '"requests";q=1000;w=3600'
        error = refused.json()["error"]
        assert error["code"] == "RATE_LIMIT_EXCEEDED"
        assert error["request_id"] == h["X-Request-ID"]
        assert {"message", "details", "timestamp"} <= error.keys()

        # a spoofed "internal" header or a forged exemption buys nothing
        spoofed = {**bearer(token), "X-Internal-Service": "true", "X-RateLimit-Exemption": "x"}
        assert http.get("/v2/admin/ratelimits", headers=spoofed).status_code == 429

        # a signed exemption, issued by the operator, lets the org read who hit limits
        op = server.token(operator.client_id, operator.client_secret)
        issued = http.post(
            "/v2/admin/ratelimits/exemptions",
            headers=bearer(op),
            json={
                "subject": "support",
                "rules": ["requests"],
                "match": "/v2/query",
                "ttl_seconds": 60,
            },
        )
        assert issued.status_code == 201, issued.text
        exempt = {**bearer(token), "X-RateLimit-Exemption": issued.json()["token"]}
        # A request drips back every 3.6 s: spend any that did while the exemption was
        # issued, so the next refusal is the exemption's doing (it names another path).
        assert any(
            http.get("/v2/admin/ratelimits", headers=bearer(token)).status_code == 429
            for _ in range(5)
        )
        assert http.get("/v2/admin/ratelimits", headers=exempt).status_code == 429  # wrong path

        def refusals_recorded() -> list[dict[str, object]]:
            r = http.post(
                "/v2/query",
                headers=exempt,
                json={
                    "metrics": ["requests"],
                    "dimensions": ["consumer_id", "status"],
                    "filters": [{"field": "status", "op": "eq", "value": 429}],
                    "range": "1h",
                },
            )
            assert r.status_code == 200, r.text
            rows: list[dict[str, object]] = r.json()["data"]
            assert rows and rows[0]["consumer_id"] == basic.client_id
            assert int(str(rows[0]["requests"])) >= 3
            return rows

        eventually(refusals_recorded)


def test_operator_override_persists_and_wins_for_one_consumer(
    limited: tuple[ServerProcess, Tenant, Tenant],
) -> None:
    server, operator, basic = limited
    op = server.token(operator.client_id, operator.client_secret)
    with server.client() as http:
        # an org admin cannot raise its own limits
        own = server.token(basic.client_id, basic.client_secret)
        denied = http.put("/v2/admin/ratelimits", headers=bearer(own), json={"burst": 10_000})
        assert denied.status_code in (403, 429)
        put = http.put(
            "/v2/admin/ratelimits",
            headers=bearer(op),
            json={"org_id": basic.org_id, "consumer_id": basic.reader_id, "burst": 3},
        )
        assert put.status_code == 200, put.text
        assert put.json()["effective"] == {
            "plan": "basic",
            "requests_per_hour": 1000,
            "burst": 3,
            "reports_per_day": 10,
        }
    server.stop()
    server.start()  # overrides are persisted
    reader = server.token(basic.reader_id, basic.reader_secret)
    with server.client() as http:
        codes = [
            http.get("/v2/analytics/overview", headers=bearer(reader)).status_code for _ in range(4)
        ]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        listed = http.get(
            "/v2/admin/ratelimits", headers=bearer(op), params={"org_id": basic.org_id}
        ).json()
        assert listed["overrides"] == [
            {"org_id": basic.org_id, "consumer_id": basic.reader_id, "burst": 3}
        ]


def test_token_requests_without_credentials_are_limited_per_ip(
    limited: tuple[ServerProcess, Tenant, Tenant], tmp_path: Path
) -> None:
    server, _, _ = limited
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/oauth/token", json={"grant_type": "client_credentials"})
        assert r.headers["RateLimit-Policy"].startswith('"anonymous-ip";q=300;w=60')
        assert http.get("/healthz").headers.get("X-RateLimit-Limit") is None


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_ingest_keys_are_limited_by_their_org_plan_not_per_ip(
    limited: tuple[ServerProcess, Tenant, Tenant], header: str
) -> None:
    server, operator, _ = limited
    key = operator.ingest_key
    with server.client() as http:
        r = http.post(
            "/v2/events",
            json=[],
            headers={header: f"Bearer {key}" if header == "Authorization" else key},
        )
        assert r.status_code == 202, r.text
        assert r.headers["RateLimit-Policy"].startswith('"requests";'), r.headers
