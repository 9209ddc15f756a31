"""``/v2/stream`` (WebSocket) and ``POST /v2/stream/tickets``: the socket side of the hub.

This module only translates: it authenticates the upgrade, turns frames into hub calls,
and turns hub errors into ``error`` frames and close codes (see ``STREAM.md``). Browser
clients cannot read a rejected upgrade, so every auth failure is accepted, explained in
an ``error`` frame, then closed with a code from the do-not-reconnect range.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect

from meterline.api.deps import requires, services
from meterline.api.schemas import errors
from meterline.api.services import Services
from meterline.auth import Principal, Scope
from meterline.errors import (
    AuthError,
    AuthMissingError,
    MeterlineError,
    QuotaExceededError,
    ScopeError,
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
from meterline.realtime.protocol import iso_now

router = APIRouter(tags=["stream"])

SUBPROTOCOL = "meterline.v2"
_BEARER_PREFIX = "meterline.bearer."
MAX_MESSAGE = 64 * 1024


def _subprotocol_token(ws: WebSocket) -> tuple[str | None, bool]:
    offered = list(ws.scope.get("subprotocols") or [])
    token = None
    for item in offered:
        if item.startswith(_BEARER_PREFIX):
            encoded = item[len(_BEARER_PREFIX) :]
            try:
                token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                token = ""
    return token, SUBPROTOCOL in offered


def _authenticate(ws: WebSocket, svc: Services) -> tuple[Principal, float]:
    """Who is connecting and when their credential expires, in STREAM.md's order."""
    token, _ = _subprotocol_token(ws)
    if token is None:
        ticket = ws.query_params.get("ticket")
        if ticket is not None:
            grant = svc.tickets.redeem(ticket)
            if grant is None:
                raise AuthError(
                    "the stream ticket is unknown, used or expired",
                    details="Tickets are single-use and valid 60 s; request a new one.",
                )
            return grant.principal, grant.token_expires_at
        token = ws.query_params.get("token")
    if token is None:
        header = ws.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
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


@router.websocket("/v2/stream")
async def stream(ws: WebSocket) -> None:
    """The live stream; see ``STREAM.md`` for the protocol."""
    svc: Services = ws.app.state.services
    hub = svc.hub
    _, wants_v2 = _subprotocol_token(ws)
    await ws.accept(subprotocol=SUBPROTOCOL if wants_v2 else None)
    now = hub.clock()
    try:
        principal, expires_at = _authenticate(ws, svc)
        principal.require(Scope.ANALYTICS_READ)
    except ScopeError as exc:
        await _reject(ws, exc, CLOSE_SCOPE, now)
        return
    except MeterlineError as exc:
        await _reject(ws, exc, CLOSE_INVALID_TOKEN, now)
        return

    async def send(frame: str) -> None:
        await ws.send_text(frame)

    async def close(code: int, reason: str) -> None:
        await ws.close(code, reason)

    conn = Connection("c_" + secrets.token_urlsafe(9), principal, expires_at, send, close)
    try:
        connected = hub.register(conn)
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
    while conn.state is ConnectionState.SUBSCRIBED:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        now = hub.clock()
        if text is None:
            conn.offer(error_frame("VALIDATION_ERROR", "send JSON text frames", None, None, now))
            await conn.flush_and_close(CLOSE_BAD_REQUEST, "binary frames are not supported")
            return
        if len(text.encode()) > MAX_MESSAGE:
            conn.offer(
                error_frame("MESSAGE_TOO_LARGE", "messages are limited to 64 KiB", None, None, now)
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
