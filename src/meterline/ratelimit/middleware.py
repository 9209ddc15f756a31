"""ASGI middleware enforcing a rate limiter in front of any ASGI app (pure ASGI)."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meterline.ratelimit.adaptive import AdaptiveFactor
from meterline.ratelimit.aio.limiter import RateLimiter
from meterline.ratelimit.decision import Decision, decision_headers
from meterline.ratelimit.exemptions import HEADER, ExemptionSigner
from meterline.ratelimit.rules import Identity

log = logging.getLogger("meterline.ratelimit")

Identify = Callable[[Scope], Awaitable[Identity | None]]
"""Who a request is from; ``None`` lets it through unlimited."""
OnDenied = Callable[[Scope, Identity, Decision], Awaitable[None]]
"""Called after every refused request (to record it as an analytics event)."""
LimiterSource = RateLimiter | Callable[[Scope], RateLimiter | None]
SignerSource = ExemptionSigner | Callable[[Scope], ExemptionSigner | None] | None

_MESSAGES = {
    "RATE_LIMIT_EXCEEDED": "Too many requests within the time window",
    "QUOTA_EXCEEDED": "The quota for this period is used up",
    "RATE_LIMITER_UNAVAILABLE": "The rate limiter is unavailable; try again shortly",
}


async def identify_by_ip(scope: Scope) -> Identity:
    """The default identity: the client address, path and method of the request."""
    client = scope.get("client")
    return Identity(
        ip=client[0] if client else "unknown", endpoint=scope["path"], method=scope["method"]
    )


def error_body(decision: Decision, request_id: str, now: float) -> bytes:
    """The 429/503 body in Meterline's error format."""
    rule = decision.rule
    details = (
        f"Rule '{rule.name}' allows {decision.limit} per {rule.policy_window} s; "
        f"retry after {max(1, round(decision.retry_after))} s."
        if rule is not None
        else ""
    )
    error = {
        "code": decision.code,
        "message": _MESSAGES[decision.code],
        "details": details,
        "request_id": request_id,
        "timestamp": datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return json.dumps({"error": error}).encode()


class RateLimitMiddleware:
    """Decides every HTTP request before the app sees it.

    Allowed requests get the rate-limit headers added to their response; refused ones get
    429 (``RATE_LIMIT_EXCEEDED`` / ``QUOTA_EXCEEDED``) or, when a fail-closed rule cannot
    reach storage, 503, with the headers and an error body, and ``on_denied`` is called.
    A valid signed credential in ``X-RateLimit-Exemption`` skips the rules it names.
    Concurrency leases are released when the response ends, and response latency and
    errors feed the adaptive factor.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: LimiterSource,
        *,
        identify: Identify = identify_by_ip,
        exemptions: SignerSource = None,
        on_denied: OnDenied | None = None,
        adaptive: AdaptiveFactor | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.identify = identify
        self.exemptions = exemptions
        self.on_denied = on_denied
        self.adaptive = adaptive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limiter = self.limiter if isinstance(self.limiter, RateLimiter) else self.limiter(scope)
        identity = await self.identify(scope) if limiter is not None else None
        if limiter is None or identity is None:
            await self.app(scope, receive, send)
            return
        exemption = None
        signer = (
            self.exemptions
            if self.exemptions is None or isinstance(self.exemptions, ExemptionSigner)
            else self.exemptions(scope)
        )
        if signer is not None:
            for name, value in scope["headers"]:
                if name == HEADER.encode():
                    exemption = signer.verify(value.decode("latin-1"), identity)
        decision = await limiter.hit(identity, exemption=exemption)
        headers = [(k.encode(), v.encode()) for k, v in decision_headers(decision, limiter.clock())]
        if not decision.allowed:
            await self._refuse(scope, send, identity, decision, headers, limiter.clock())
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                existing = message.get("headers", [])
                # A response that already states a limit (a quota refusal from the route)
                # keeps it: two sets of X-RateLimit-* headers would contradict each other.
                if not any(k.lower() == b"x-ratelimit-limit" for k, _ in existing):
                    message["headers"] = [*existing, *headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if decision.leases:
                await limiter.release(decision)
            adaptive = self.adaptive or limiter.adaptive
            if adaptive is not None:
                adaptive.observe((time.perf_counter() - started) * 1000, status >= 500)

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        identity: Identity,
        decision: Decision,
        headers: list[tuple[bytes, bytes]],
        now: float,
    ) -> None:
        state = scope.get("state") or {}
        request_id = str(state.get("request_id") or f"req_{secrets.token_hex(8)}")
        body = error_body(decision, request_id, now)
        status = 503 if decision.code == "RATE_LIMITER_UNAVAILABLE" else 429
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        if self.on_denied is not None:
            try:
                await self.on_denied(scope, identity, decision)
            except Exception:  # recording a refusal must never break the response path
                log.exception("recording a rate-limit refusal failed")
