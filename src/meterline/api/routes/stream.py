"""``/v2/stream`` (WebSocket) and ``POST /v2/stream/tickets``: the socket side of the hub.

This module only translates: it authenticates the upgrade, turns frames into hub calls,
and turns hub errors into ``error`` frames and close codes (see ``STREAM.md``). Browser
clients cannot read a rejected upgrade, so their auth failures are accepted, explained
in an ``error`` frame, then closed with a code from the do-not-reconnect range; other
clients get the HTTP 401/403 with the error body before any upgrade.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import HTTPConnection

from meterline.api.deps import requires, services
from meterline.api.errors import error_body
from meterline.api.schemas import errors
from meterline.api.services import Services
from meterline.api.stream_socket import direct_socket
from meterline.auth import Principal, Scope
from meterline.errors import (
    AuthError,
    AuthMissingError,
    MeterlineError,
    QuotaExceededError,
    ScopeError,
    ValidationError,
)
from meterline.realtime import (
    CLOSE_BAD_REQUEST,
    CLOSE_INVALID_TOKEN,
    CLOSE_LIMIT,
    CLOSE_SCOPE,
    CLOSE_TOO_BIG,
    Connection,
    ConnectionState,
    encode,
    error_frame,
    parse_subscribe,
)
from meterline.realtime.hub import CLOSE_TRY_LATER, OverloadedError, StreamHub
from meterline.realtime.protocol import iso_now

log = logging.getLogger(__name__)
router = APIRouter(tags=["stream"])
SESSION_COOKIE = "meterline_session"
"""The dashboard's session cookie (set by ``/login``)."""
CLOSE_POLICY = 1008

SUBPROTOCOL = "meterline.v2"
_BEARER_PREFIX = "meterline.bearer."


class OriginError(MeterlineError):
    """A browser page from another site presented the session cookie."""

    code = "ORIGIN_NOT_ALLOWED"
    status = 403


def _subprotocol_token(conn: HTTPConnection) -> tuple[str | None, bool]:
    offered = list(conn.scope.get("subprotocols") or [])
    token = None
    for item in offered:
        if item.startswith(_BEARER_PREFIX):
            encoded = item[len(_BEARER_PREFIX) :]
            try:
                token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                token = ""
    return token, SUBPROTOCOL in offered


def _origin_allowed(conn: HTTPConnection, svc: Services) -> tuple[bool, str]:
    """Whether a browser's ``Origin`` may use the session cookie here, and why not.

    Allowed: this server as the client reached it (the proxy's forwarded host and scheme
    honoured), the configured public URL, and ``METERLINE_STREAM_ALLOWED_ORIGINS``.
    """
    origin = conn.headers.get("origin")
    if origin is None:
        return True, ""  # not a browser: no ambient-credential risk
    origin = origin.rstrip("/").lower()
    host = conn.headers.get("x-forwarded-host") or conn.headers.get("host", "")
    proto = conn.headers.get("x-forwarded-proto")
    if proto is None:
        proto = "https" if conn.url.scheme in ("wss", "https") else "http"
    allowed = {f"{proto}://{host.split(',')[0].strip()}".lower()}
    settings = svc.settings
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}".lower())
    allowed.update(o.lower() for o in settings.stream_allowed_origins)
    if origin in allowed:
        return True, ""
    return False, (
        f"Origin {origin} is not this server ({', '.join(sorted(allowed))}); add it to "
        "METERLINE_STREAM_ALLOWED_ORIGINS to allow a session cookie from there."
    )


def _authenticate(conn: HTTPConnection, svc: Services) -> tuple[Principal, float]:
    """Who is connecting and when their credential expires, in STREAM.md's order, then
    the dashboard's session cookie (checked against ``Origin``)."""
    token, _ = _subprotocol_token(conn)
    if token is None:
        ticket = conn.query_params.get("ticket")
        if ticket is not None:
            grant = svc.tickets.redeem(ticket)
            if grant is None:
                raise AuthError(
                    "the stream ticket is unknown, used or expired",
                    details="Tickets are single-use and valid 60 s; request a new one.",
                )
            return grant.principal, grant.token_expires_at
        token = conn.query_params.get("token")
    if token is None:
        header = conn.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
    if token is None and conn.cookies.get(SESSION_COOKIE):
        ok, why = _origin_allowed(conn, svc)
        if not ok:
            # Cross-site WebSocket hijacking: another site's page riding the cookie.
            log.warning("stream refused: session cookie from a foreign origin. %s", why)
            raise OriginError("this origin may not use the session cookie", details=why)
        token = conn.cookies[SESSION_COOKIE]
    if not token:
        raise AuthMissingError(
            "no credentials were sent",
            details="Use the meterline.bearer.<token> subprotocol, ?ticket=, ?token= "
            "or an Authorization header.",
        )
    principal = svc.auth.principal_from_token(token)
    claims = svc.auth.signer.verify(token, now=svc.auth.clock())
    return principal, float(claims.expires_at)


@router.post("/v2/stream/tickets", status_code=201, responses=errors(401, 403))
def create_ticket(
    request: Request, principal: Principal = Depends(requires(Scope.ANALYTICS_READ))
) -> dict[str, Any]:
    """A single-use ticket (valid 60 s) to open ``/v2/stream?ticket=…`` without a token in
    the URL; the connection it opens lives until the presenting token expires."""
    svc = services(request)
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip()
    expires = float(svc.auth.signer.verify(token, now=svc.auth.clock()).expires_at)
    value, until = svc.tickets.issue(principal, expires)
    return {"ticket": value, "expires_at": iso_now(until), "url": f"/v2/stream?ticket={value}"}


async def _reject(ws: WebSocket, exc: MeterlineError, code: int, now: float) -> None:
    await ws.send_text(
        encode(error_frame(exc.code, exc.message, exc.details, None, now, exc.validation_errors))
    )
    await ws.close(code, exc.message[:120])


def _is_browser(ws: WebSocket) -> bool:
    """Browsers always send ``Origin`` on a WebSocket upgrade; other clients rarely do."""
    return "origin" in ws.headers


async def _deny(ws: WebSocket, exc: MeterlineError) -> None:
    """Refuse the upgrade with an HTTP answer in the documented error format (for
    clients that can read it: a browser only ever sees close code 1006)."""
    request_id = f"req_{secrets.token_hex(8)}"
    body = error_body(
        exc.code,
        exc.message,
        request_id=request_id,
        details=exc.details,
        validation_errors=exc.validation_errors,
    )
    headers = {"X-Request-ID": request_id}
    extra = getattr(exc, "headers", None)  # Retry-After and limits of a refused stream
    if isinstance(extra, dict):
        headers.update(extra)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="meterline"'
    await ws.send_denial_response(JSONResponse(body, status_code=exc.status, headers=headers))


def _can_deny(ws: WebSocket) -> bool:
    return "websocket.http.response" in (ws.scope.get("extensions") or {})


def _admit_before_upgrade(ws: WebSocket, hub: StreamHub, principal: Principal) -> None:
    """Refuse an org over its plan's streams before the upgrade, for a client that can
    read the HTTP answer. Overload (1013) is left to :meth:`StreamHub.register` after the
    upgrade, so every client learns of it the same way and reconnects with backoff."""
    if _is_browser(ws) or not _can_deny(ws):
        return  # the connection limit is checked by register, then closed 4429
    try:
        hub.admit(principal)
    except OverloadedError:
        return


@router.websocket("/v2/stream")
async def stream(ws: WebSocket) -> None:
    """The live stream; see ``STREAM.md`` for the protocol.

    Bad credentials from a non-browser client are refused before the upgrade (HTTP 401
    or 403 with the error body), and so is an org over its plan's streams (HTTP 429
    ``QUOTA_EXCEEDED`` with ``Retry-After``); a browser's upgrade is accepted so it can
    read the ``error`` frame, then closed with 4401, 4403, 1008 or 4429.
    """
    svc: Services = ws.app.state.services
    hub = svc.hub
    _, wants_v2 = _subprotocol_token(ws)
    now = hub.clock()
    try:
        principal, expires_at = _authenticate(ws, svc)
        principal.require(Scope.ANALYTICS_READ)
        _admit_before_upgrade(ws, hub, principal)
    except MeterlineError as exc:
        if not _is_browser(ws) and _can_deny(ws):
            await _deny(ws, exc)
            return
        await ws.accept(subprotocol=SUBPROTOCOL if wants_v2 else None)
        if isinstance(exc, OriginError):
            code = CLOSE_POLICY
        elif isinstance(exc, ScopeError):
            code = CLOSE_SCOPE
        else:
            code = CLOSE_INVALID_TOKEN
        await _reject(ws, exc, code, now)
        return
    await ws.accept(subprotocol=SUBPROTOCOL if wants_v2 else None)

    async def send(frame: str) -> None:
        await ws.send_text(frame)

    async def close(code: int, reason: str) -> None:
        await ws.close(code, reason)

    direct = direct_socket(ws.scope) if svc.settings.stream_direct_writes else None
    conn = Connection(
        "c_" + secrets.token_urlsafe(9), principal, expires_at, send, close, direct=direct
    )
    try:
        connected = hub.register(conn)
    except OverloadedError as exc:
        conn.transition(ConnectionState.CLOSED)
        await _reject(ws, exc, CLOSE_TRY_LATER, now)
        return
    except QuotaExceededError as exc:
        conn.transition(ConnectionState.CLOSED)
        await _reject(ws, exc, CLOSE_LIMIT, now)
        return
    conn.offer(connected)
    try:
        await _serve(ws, svc, conn)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(conn)


async def _serve(ws: WebSocket, svc: Services, conn: Connection) -> None:
    hub = svc.hub
    max_bytes = hub.message_limit(conn.principal.plan)
    while conn.state is ConnectionState.SUBSCRIBED:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        now = hub.clock()
        conn.last_received = now
        if text is None:
            conn.offer(error_frame("VALIDATION_ERROR", "send JSON text frames", None, None, now))
            await conn.flush_and_close(CLOSE_BAD_REQUEST, "binary frames are not supported")
            return
        if len(text.encode()) > max_bytes:
            conn.offer(
                error_frame(
                    "MESSAGE_TOO_LARGE",
                    f"messages are limited to {max_bytes // 1024} KiB on this plan",
                    "Split the subscription, or upgrade the plan.",
                    None,
                    now,
                )
            )
            await conn.flush_and_close(CLOSE_TOO_BIG, "message too large")
            return
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            conn.offer(
                error_frame("VALIDATION_ERROR", "messages must be JSON objects", None, None, now)
            )
            await conn.flush_and_close(CLOSE_BAD_REQUEST, "malformed message")
            return
        await _handle(svc, conn, body, now)


async def _handle(svc: Services, conn: Connection, body: dict[str, Any], now: float) -> None:
    hub = svc.hub
    action = body.get("action")
    sub_id = body.get("subscription_id") if isinstance(body.get("subscription_id"), str) else None
    try:
        if action == "subscribe":
            await hub.subscribe(conn, parse_subscribe(body), body.get("resume"))
        elif action == "unsubscribe":
            hub.unsubscribe(conn, str(body.get("subscription_id")))
        elif action == "ping":
            conn.pings_expected = True
            conn.offer({"type": "pong", "id": body.get("id"), "timestamp": iso_now(now)})
        elif action == "refresh":
            token = body.get("token")
            if not isinstance(token, str) or not token:
                raise AuthMissingError("refresh needs a 'token'")
            principal = svc.auth.principal_from_token(token)
            same = (
                principal.org_id == conn.principal.org_id
                and principal.subject == conn.principal.subject
            )
            if not same:
                raise AuthError(
                    "the new token is for another client or org",
                    details="Refresh with a token of the client that opened the stream.",
                )
            principal.require(Scope.ANALYTICS_READ)
            claims = svc.auth.signer.verify(token, now=svc.auth.clock())
            conn.offer(hub.refresh(conn, float(claims.expires_at)))
        else:
            conn.offer(
                error_frame(
                    "UNKNOWN_ACTION",
                    f"unknown action {action!r}",
                    "Use subscribe, unsubscribe, refresh or ping.",
                    sub_id,
                    now,
                )
            )
    except MeterlineError as exc:
        code = "AUTH_TOKEN_INVALID" if action == "refresh" else exc.code
        conn.offer(error_frame(code, exc.message, exc.details, sub_id, now, exc.validation_errors))


# -- Server-Sent Events: the read-only fallback -----------------------------------------

_SSE_FILTERS = ("regions", "endpoints", "consumers", "status_class", "methods", "models")


def _sse_subscriptions(request: Request) -> list[dict[str, Any]]:
    """The subscribe messages of an SSE request: ``?subscribe=`` (one JSON subscription or
    a list), or the flat form ``?metrics=a,b&time_window=5m&regions=eu…``."""
    params = request.query_params
    raw = params.get("subscribe")
    if raw is not None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ValidationError(
                "subscribe must be JSON",
                validation_errors=[{"field": "subscribe", "message": "not valid JSON"}],
            ) from None
        items = parsed if isinstance(parsed, list) else [parsed]
        if not items or not all(isinstance(i, dict) for i in items):
            raise ValidationError(
                "subscribe must be a subscription object or a list of them",
                validation_errors=[{"field": "subscribe", "message": "give objects"}],
            )
        return [{**i, "action": "subscribe"} for i in items]
    metrics = params.get("metrics", "all")
    filters: dict[str, Any] = {"time_window": params.get("time_window", "5m")}
    if "aggregation" in params:
        filters["aggregation"] = params["aggregation"]
    for name in _SSE_FILTERS:
        if name in params:
            filters[name] = [v for v in params[name].split(",") if v]
    return [
        {
            "action": "subscribe",
            "subscription_id": params.get("subscription_id", "sse"),
            "metrics": "all" if metrics == "all" else [m for m in metrics.split(",") if m],
            "filters": filters,
            "delivery_frequency": params.get("delivery_frequency", "real_time"),
        }
    ]


def _event_id(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _last_event(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        state = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return state if isinstance(state, dict) else {}


@router.get(
    "/v2/stream/sse",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "the stream"},
        **errors(400, 401, 403, 429),
    },
)
async def stream_sse(request: Request) -> StreamingResponse:
    """The stream as Server-Sent Events for clients that cannot hold a WebSocket: the same
    auth and messages, read-only (subscriptions are given in the URL), with heartbeats.
    ``Last-Event-ID`` resumes: missed updates and alerts are replayed on the same node."""
    svc = services(request)
    hub = svc.hub
    principal, expires_at = _authenticate(request, svc)
    principal.require(Scope.ANALYTICS_READ)
    subscriptions = [parse_subscribe(m) for m in _sse_subscriptions(request)]
    resumed = _last_event(request.headers.get("last-event-id"))
    queue: asyncio.Queue[str | int] = asyncio.Queue(maxsize=1)

    async def send(frame: str) -> None:
        # Blocks while the client does not read: the write deadline then evicts it.
        await queue.put(frame)

    async def close(code: int, reason: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(code)

    conn = Connection("c_" + secrets.token_urlsafe(9), principal, expires_at, send, close)
    connected = hub.register(conn)  # QUOTA_EXCEEDED becomes a 429 before any byte is sent
    conn.offer(connected)
    try:
        for spec in subscriptions:
            resume = None
            if resumed:
                resume = {
                    "epoch": resumed.get("e"),
                    "connection_id": resumed.get("c"),
                    "seq": (resumed.get("s") or {}).get(spec.subscription_id, 0),
                }
                if isinstance(resumed.get("a"), str):
                    resume["last_alert_id"] = resumed["a"]
            await hub.subscribe(conn, spec, resume)
    except MeterlineError:
        hub.unregister(conn)
        raise

    state: dict[str, Any] = {"e": hub.epoch, "c": conn.connection_id, "s": {}}
    if isinstance(resumed.get("a"), str):
        state["a"] = resumed["a"]

    async def events() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            while True:
                item = await queue.get()
                if isinstance(item, int):
                    yield f"event: close\ndata: {json.dumps({'code': item})}\n\n"
                    return
                message = json.loads(item)
                kind = message.get("type", "message")
                if kind == "metric_update" and not message.get("replayed"):
                    state["s"][message["subscription_id"]] = message["seq"]
                elif kind == "metric_update":
                    state["s"][message["subscription_id"]] = max(
                        message["seq"], state["s"].get(message["subscription_id"], 0)
                    )
                elif kind == "alert" and message.get("event_id"):
                    state["a"] = max(state.get("a", ""), message["event_id"])
                yield f"id: {_event_id(state)}\nevent: {kind}\ndata: {item}\n\n"
        finally:
            hub.unregister(conn)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
