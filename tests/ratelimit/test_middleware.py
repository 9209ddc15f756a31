"""The ASGI middleware in front of a small Starlette app, through httpx.ASGITransport."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import Scope

from meterline.clock import FrozenClock
from meterline.ratelimit import (
    AdaptiveFactor,
    Algorithm,
    Decision,
    ExemptionSigner,
    Identity,
    RateLimitMiddleware,
    Rule,
)
from meterline.ratelimit.aio import RateLimiter
from tests.ratelimit.aio_run import run

T0 = 1_699_999_200.0


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hi")


async def slow_error(request: Request) -> JSONResponse:
    return JSONResponse({"x": 1}, status_code=500)


def app_with(limiter: RateLimiter, **options: object) -> Starlette:
    app = Starlette(routes=[Route("/hello", hello), Route("/fail", slow_error)])
    app.add_middleware(RateLimitMiddleware, limiter=limiter, **options)  # type: ignore[arg-type]
    return app


def get_many(app: Starlette, n: int, path: str = "/hello", **kw: object) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.4", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [await http.get(path, **kw) for _ in range(n)]  # type: ignore[arg-type]

    return run(main())


def test_headers_on_success_and_429_in_the_error_format() -> None:
    limiter = RateLimiter("memory://", [Rule("ip", 2, 60, per=("ip",))], clock=FrozenClock(T0))
    refused: list[tuple[Identity, Decision]] = []

    async def on_denied(scope: Scope, identity: Identity, decision: Decision) -> None:
        refused.append((identity, decision))

    ok, _, no = get_many(app_with(limiter, on_denied=on_denied), 3)
    assert ok.status_code == 200 and ok.headers["X-RateLimit-Remaining"] == "1"
    assert ok.headers["X-RateLimit-Reset"] == str(int(T0 + 60))
    assert ok.headers["RateLimit"] == '"ip";r=1;t=60'
    assert "Retry-After" not in ok.headers
    assert no.status_code == 429
    assert no.headers["Retry-After"] == no.headers["X-RateLimit-Retry-After"] == "60"
    assert no.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert refused[0][0].ip == "198.51.100.4" and not refused[0][1].allowed


def test_quota_refusal_says_quota_exceeded() -> None:
    rule = Rule("monthly", 1, 30 * 86400, per=("ip",), quota=True)
    limiter = RateLimiter("memory://", [rule], clock=FrozenClock(T0))
    assert get_many(app_with(limiter), 2)[1].json()["error"]["code"] == "QUOTA_EXCEEDED"


def test_signed_exemption_skips_only_its_rules_and_expires() -> None:
    clock = FrozenClock(T0)
    signer = ExemptionSigner(b"0123456789abcdef-secret", clock)
    limiter = RateLimiter(
        "memory://", [Rule("ip", 1, 60, per=("ip",)), Rule("all", 3, 60)], clock=clock
    )
    app = app_with(limiter, exemptions=signer)
    token = signer.issue("batch", rules=("ip",), match="/hello", ttl=30)
    codes = [r.status_code for r in get_many(app, 4, headers={"X-RateLimit-Exemption": token})]
    assert codes == [200, 200, 200, 429]  # "ip" skipped, "all" still holds
    other = signer.issue("batch", rules=("ip",), match="/elsewhere", ttl=30)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for header in (other, forged, "X-Internal-Service"):
        r = get_many(app, 1, headers={"X-RateLimit-Exemption": header})[0]
        assert r.status_code == 429
    clock.advance(31)
    assert signer.verify(token, Identity(endpoint="/hello")) is None


def test_concurrency_slots_are_released_when_the_response_ends() -> None:
    rule = Rule("inflight", 1, 30, Algorithm.CONCURRENCY, per=("ip",))
    limiter = RateLimiter("memory://", [rule], clock=FrozenClock(T0))
    assert [r.status_code for r in get_many(app_with(limiter), 3)] == [200, 200, 200]


def test_adaptive_factor_shrinks_limits_while_overloaded_and_shows_in_headers() -> None:
    clock = FrozenClock(T0)
    adaptive = AdaptiveFactor(target_error_rate=0.1, interval=1.0, clock=clock)
    rule = Rule("ip", 1000, 60, per=("ip",), adaptive=True)
    limiter = RateLimiter("memory://", [rule], clock=clock, adaptive=adaptive)
    app = app_with(limiter)
    for _ in range(3):
        get_many(app, 5, path="/fail")
        clock.advance(1.0)
        get_many(app, 1, path="/fail")
    assert adaptive.value < 0.5
    r = get_many(app, 1)[0]
    assert r.headers["X-RateLimit-Adaptive-Factor"] == f"{adaptive.value:.2f}"
    assert int(r.headers["X-RateLimit-Limit"]) == int(1000 * adaptive.value)
    for _ in range(20):  # healthy again: the factor grows back to 1
        clock.advance(1.0)
        get_many(app, 3)
    assert adaptive.value == 1.0
    assert "X-RateLimit-Adaptive-Factor" not in get_many(app, 1)[0].headers
