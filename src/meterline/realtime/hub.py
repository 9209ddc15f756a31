"""The hub: subscriptions, one computation per distinct subscription, and fan-out.

Each tick (250 ms) the hub computes every *shared stream* that is due — a shared stream
is the (org, metrics, filters, window, frequency) that any number of subscriptions on
any connections hold — once, and offers the encoded update to every holder's outbox.
Offering never waits; slow readers are dealt with by their :class:`Connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from meterline.clock import Clock, system_clock
from meterline.errors import (
    QuotaExceededError,
    RateLimitExceededError,
    ValidationError,
)
from meterline.query import QueryService
from meterline.realtime import catalogue
from meterline.realtime.alerts import AlertState, ThresholdAlert
from meterline.realtime.connection import (
    CLOSE_TOKEN_EXPIRED,
    Connection,
    ConnectionState,
    encode,
)
from meterline.realtime.protocol import SubscriptionSpec, iso_now
from meterline.realtime.seeding import query_window
from meterline.realtime.window import LiveWindows

log = logging.getLogger(__name__)

TICK = 0.25
REAL_TIME_IDLE = 5.0
HEARTBEAT_INTERVAL = 20.0
EXPIRY_LEAD = 60.0
MAX_SUBSCRIPTIONS = 20
MAX_LIFETIME = 12 * 3600.0
CONNECTIONS_PER_ORG = {"basic": 20, "professional": 100, "enterprise": 500}
SUBSCRIBE_BURST = 20
SUBSCRIBE_PER_SECOND = 5.0


@dataclass(slots=True)
class SharedStream:
    """One computation and everyone who receives it."""

    org_id: str
    spec: SubscriptionSpec
    holders: dict[tuple[str, str], Connection] = field(default_factory=dict)
    next_due: float = 0.0
    busy: bool = False
    last_metrics: list[Any] | None = None
    last_fanout: float = 0.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


def _grace() -> float:
    return float(os.environ.get("METERLINE_STREAM_TOKEN_GRACE", "25"))


class StreamHub:
    """Owns live windows, connections, shared streams and alert state of one server.

    Example:
        >>> hub = StreamHub(LiveWindows(), queries)  # doctest: +SKIP
        >>> writer.listeners.append(hub.windows.add_rows)  # doctest: +SKIP
        >>> await hub.start()  # doctest: +SKIP
    """

    def __init__(
        self,
        windows: LiveWindows,
        queries: QueryService,
        clock: Clock = system_clock,
        registry: CollectorRegistry | None = None,
        epoch: str = "",
    ) -> None:
        self.windows = windows
        self.queries = queries
        self.clock = clock
        self.epoch = epoch
        self.grace = _grace()
        self.connections: dict[str, Connection] = {}
        self.streams: dict[tuple[Any, ...], SharedStream] = {}
        self.alerts: dict[tuple[str, ...], ThresholdAlert] = {}
        # called with (org_id, alert frame) on every firing and resolution; must not block
        self.alert_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._opened: dict[str, float] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        r = registry or CollectorRegistry()
        self.m_connections = Gauge("meterline_stream_connections", "Open streams", registry=r)
        self.m_evictions = Counter(
            "meterline_stream_slow_consumer_evictions_total",
            "Stream connections closed for not reading",
            registry=r,
        )
        self.m_drops = Counter(
            "meterline_stream_conflated_updates_total",
            "metric_update frames replaced by a newer one before being sent",
            registry=r,
        )
        self.m_depth = Gauge(
            "meterline_stream_queue_depth_max", "Deepest per-connection outbox", registry=r
        )
        self.m_computations = Counter(
            "meterline_stream_computations_total", "Shared stream computations", registry=r
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the tick loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Close every connection with 1001 (clients reconnect) and stop ticking."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(
            *(
                c.flush_and_close(1001, "server shutting down", 0.5)
                for c in self.connections.values()
            ),
            return_exceptions=True,
        )

    # -- connections ----------------------------------------------------------------------

    def org_connections(self, org_id: str) -> int:
        """Open connections of one org on this node."""
        return sum(1 for c in self.connections.values() if c.principal.org_id == org_id)

    def connection_limit(self, plan: str) -> int:
        """How many concurrent streams an org on ``plan`` may hold per node."""
        return CONNECTIONS_PER_ORG.get(plan, 20)

    def limits(self, plan: str) -> dict[str, Any]:
        """The limits announced in ``connected`` and ``subscribed``."""
        return {
            "max_message_bytes": 64 * 1024,
            "max_subscriptions": MAX_SUBSCRIPTIONS,
            "max_connections": self.connection_limit(plan),
            "outbox_frames": 64,
        }

    def register(self, conn: Connection) -> dict[str, Any]:
        """Admit a connection (or raise ``QUOTA_EXCEEDED``) and return its ``connected`` frame."""
        principal = conn.principal
        if self.org_connections(principal.org_id) >= self.connection_limit(principal.plan):
            raise QuotaExceededError(
                "too many open streams for this org",
                details=f"Your plan allows {self.connection_limit(principal.plan)} per node.",
            )
        conn.transition(ConnectionState.SUBSCRIBED)
        conn.on_evict = self._evicted
        now = self.clock()
        conn.last_sent = now
        self._opened[conn.connection_id] = now
        self.connections[conn.connection_id] = conn
        self._buckets[conn.connection_id] = _Bucket(SUBSCRIBE_BURST, now)
        self.m_connections.set(len(self.connections))
        conn.start_writer(self.clock)
        return {
            "type": "connected",
            "connection_id": conn.connection_id,
            "epoch": self.epoch,
            "heartbeat_interval": HEARTBEAT_INTERVAL,
            "token_expires_at": iso_now(conn.token_expires_at),
            "limits": self.limits(principal.plan),
            "timestamp": iso_now(now),
        }

    def unregister(self, conn: Connection) -> None:
        """Forget a connection and its subscriptions."""
        for sub_id in list(conn.subscriptions):
            self._detach(conn, sub_id)
        self.connections.pop(conn.connection_id, None)
        self._opened.pop(conn.connection_id, None)
        self._buckets.pop(conn.connection_id, None)
        self.m_connections.set(len(self.connections))
        conn.stop()

    def _evicted(self, conn: Connection) -> None:
        self.m_evictions.inc()
        for sub_id in list(conn.subscriptions):
            self._detach(conn, sub_id)
        self.connections.pop(conn.connection_id, None)
        self.m_connections.set(len(self.connections))

    # -- subscriptions --------------------------------------------------------------------

    def _take_token(self, conn: Connection) -> None:
        now = self.clock()
        bucket = self._buckets[conn.connection_id]
        bucket.tokens = min(
            SUBSCRIBE_BURST, bucket.tokens + (now - bucket.at) * SUBSCRIBE_PER_SECOND
        )
        bucket.at = now
        if bucket.tokens < 1:
            raise RateLimitExceededError(
                "too many subscribe messages", details="At most 5 per second after a burst of 20."
            )
        bucket.tokens -= 1

    async def subscribe(self, conn: Connection, spec: SubscriptionSpec, resume: Any = None) -> None:
        """Attach (or replace) a subscription, answer ``subscribed`` and a first snapshot.

        ``resume`` ({seq, epoch}) from a reconnecting client continues its sequence when
        the epoch is this node's; otherwise a ``resync`` (node_restart) precedes the snapshot.
        """
        self._take_token(conn)
        replacing = spec.subscription_id in conn.subscriptions
        if not replacing and len(conn.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise QuotaExceededError(
                f"a connection may hold at most {MAX_SUBSCRIPTIONS} subscriptions",
                details="Unsubscribe first, or open another connection.",
            )
        if replacing:
            self._detach(conn, spec.subscription_id)
        org_id = conn.principal.org_id
        conn.subscriptions[spec.subscription_id] = spec
        shared_key = (org_id, *spec.key)
        stream = self.streams.get(shared_key)
        if stream is None:
            stream = self.streams[shared_key] = SharedStream(org_id, spec)
            stream.next_due = self.clock() + spec.frequency_seconds
        stream.holders[(conn.connection_id, spec.subscription_id)] = conn
        now = self.clock()
        conn.offer(
            {
                "type": "subscribed",
                "subscription_id": spec.subscription_id,
                **spec.effective(),
                "limits": self.limits(conn.principal.plan),
                "timestamp": iso_now(now),
            }
        )
        if isinstance(resume, dict):
            seq = resume.get("seq")
            if resume.get("epoch") == self.epoch and isinstance(seq, int) and seq >= 0:
                conn.seq[spec.subscription_id] = max(conn.seq.get(spec.subscription_id, 0), seq)
            else:
                conn.offer(
                    {
                        "type": "resync",
                        "subscription_id": spec.subscription_id,
                        "reason": "node_restart",
                        "timestamp": iso_now(now),
                    }
                )
        self._arm_alerts(conn, spec, now)
        body = await self._compute(org_id, spec, now)
        conn.offer_update(spec.subscription_id, self._frame(conn, spec.subscription_id, body))
        self._evaluate(conn, spec, body, now)

    def unsubscribe(self, conn: Connection, subscription_id: str) -> None:
        """Drop a subscription; unknown ids are a validation error."""
        if subscription_id not in conn.subscriptions:
            raise ValidationError(
                "no such subscription on this connection",
                validation_errors=[{"field": "subscription_id", "message": "not subscribed"}],
            )
        self._detach(conn, subscription_id)
        conn.offer(
            {
                "type": "unsubscribed",
                "subscription_id": subscription_id,
                "timestamp": iso_now(self.clock()),
            }
        )

    def _detach(self, conn: Connection, subscription_id: str) -> None:
        spec = conn.subscriptions.pop(subscription_id, None)
        if spec is None:
            return
        shared_key = (conn.principal.org_id, *spec.key)
        stream = self.streams.get(shared_key)
        if stream is not None:
            stream.holders.pop((conn.connection_id, subscription_id), None)
            if not stream.holders:
                del self.streams[shared_key]

    # -- alerts ---------------------------------------------------------------------------

    def _alert_key(self, conn: Connection, sub_id: str, metric: str) -> tuple[str, ...]:
        p = conn.principal
        return (p.org_id, p.subject, sub_id, metric)

    def _arm_alerts(self, conn: Connection, spec: SubscriptionSpec, now: float) -> None:
        for rule in spec.thresholds:
            key = self._alert_key(conn, spec.subscription_id, rule.metric)
            found = self.alerts.get(key)
            if found is None or found.rule != rule:
                self.alerts[key] = ThresholdAlert(rule, "|".join(key))
            elif found.state is AlertState.FIRING:
                # A replayed subscription learns of the alert it may have missed; the
                # unchanged alert_id lets the client drop what it has already seen.
                conn.offer(found.message("firing", None, now, spec.subscription_id))

    def _evaluate(
        self, conn: Connection, spec: SubscriptionSpec, body: dict[str, Any], now: float
    ) -> None:
        if not spec.thresholds:
            return
        values = {m["name"]: m["value"] for m in body["metrics"]}
        for rule in spec.thresholds:
            alert = self.alerts.get(self._alert_key(conn, spec.subscription_id, rule.metric))
            if alert is None:
                continue
            value = values.get(rule.metric)
            if rule.metric not in values:
                value = self._single(conn.principal.org_id, spec, rule.metric, now)
            message = alert.observe(value, now, spec.subscription_id)
            if message is not None:
                conn.offer(message)
                for listener in self.alert_listeners:
                    listener(conn.principal.org_id, message)

    def _single(self, org_id: str, spec: SubscriptionSpec, metric: str, now: float) -> Any:
        end = int(now) + 1
        totals = self.windows.org(org_id).totals(end - spec.window_seconds, end, spec.filters)
        return catalogue.compute(metric, totals, spec.window_seconds / 60)

    # -- computing ------------------------------------------------------------------------

    async def _compute(self, org_id: str, spec: SubscriptionSpec, now: float) -> dict[str, Any]:
        self.m_computations.inc()
        width = spec.window_seconds
        end = int(now) + 1
        start = end - width
        if spec.live:
            window = self.windows.org(org_id)
            minutes = width / 60
            current = window.totals(start, end, spec.filters)
            previous = window.totals(start - width, start, spec.filters)
            values = {m: catalogue.compute(m, current, minutes) for m in spec.metrics}
            before = {m: catalogue.compute(m, previous, minutes) for m in spec.metrics}
        else:
            values, before = await asyncio.gather(
                asyncio.to_thread(
                    query_window, self.queries, org_id, spec.metrics, spec.filters, start, end
                ),
                asyncio.to_thread(
                    query_window,
                    self.queries,
                    org_id,
                    spec.metrics,
                    spec.filters,
                    start - width,
                    start,
                ),
            )
        return {
            "metrics": [
                {
                    "name": m,
                    "value": values[m],
                    "change": catalogue.change(values[m], before[m]),
                    "unit": catalogue.unit(m),
                }
                for m in spec.metrics
            ],
            "window": {"from": iso_now(start), "to": iso_now(end)},
            "timestamp": iso_now(now),
        }

    def _frame(self, conn: Connection, sub_id: str, body: dict[str, Any]) -> str:
        return self._splice(sub_id, conn.next_seq(sub_id), encode(body))

    @staticmethod
    def _splice(sub_id: str, seq: int, encoded_body: str) -> str:
        head = f'{{"type":"metric_update","subscription_id":{json.dumps(sub_id)},"seq":{seq},'
        return head + encoded_body[1:]

    async def _deliver(self, stream: SharedStream, now: float) -> None:
        try:
            body = await self._compute(stream.org_id, stream.spec, now)
        except Exception:
            log.exception("stream computation failed")
            return
        finally:
            stream.busy = False
        if (
            stream.spec.frequency_seconds < 1
            and body["metrics"] == stream.last_metrics
            and now - stream.last_fanout < REAL_TIME_IDLE
        ):
            # real_time coalesces: unchanged values are not re-sent every 250 ms.
            return
        stream.last_metrics, stream.last_fanout = body["metrics"], now
        encoded = encode(body)
        for (_, sub_id), conn in list(stream.holders.items()):
            conn.offer_update(sub_id, self._splice(sub_id, conn.next_seq(sub_id), encoded))
            spec = conn.subscriptions.get(sub_id)
            if spec is not None and spec.thresholds:
                self._evaluate(conn, spec, body, now)

    # -- the loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream tick failed")
            await asyncio.sleep(TICK)

    async def tick(self) -> None:
        """Deliver every due shared stream, then look after each connection."""
        now = self.clock()
        for stream in list(self.streams.values()):
            if stream.busy or now < stream.next_due:
                continue
            stream.next_due = max(stream.next_due + stream.spec.frequency_seconds, now + TICK / 2)
            if stream.spec.live:
                stream.busy = True
                await self._deliver(stream, now)
            else:
                stream.busy = True
                asyncio.get_running_loop().create_task(self._deliver(stream, now))
        deepest = 0
        for conn in list(self.connections.values()):
            deepest = max(deepest, conn.depth)
            self._housekeep(conn, now)
        self.m_depth.set(deepest)
        if now - self._last_prune > 10:
            self._last_prune = now
            self.windows.prune(now)

    def _housekeep(self, conn: Connection, now: float) -> None:
        if conn.drops:
            self.m_drops.inc(conn.drops)
            conn.drops = 0
        if conn.stalled(now):
            conn.evict("send pending past the write deadline")
            return
        expires = conn.token_expires_at
        if not conn.expiry_warned and now >= expires - EXPIRY_LEAD:
            conn.expiry_warned = True
            conn.offer(
                {
                    "type": "token_expiring",
                    "expires_at": iso_now(expires),
                    "grace_seconds": self.grace,
                    "timestamp": iso_now(now),
                }
            )
        if now >= expires + self.grace:
            stamp = iso_now(expires)
            self._close(
                conn,
                CLOSE_TOKEN_EXPIRED,
                "AUTH_TOKEN_INVALID",
                "the access token has expired",
                f"Token expired at {stamp}; send a refresh with a new token, or reconnect.",
            )
            return
        if now - self._opened.get(conn.connection_id, now) > MAX_LIFETIME:
            self._close(
                conn,
                1001,
                "CONNECTION_MAX_AGE",
                "the connection reached its maximum age",
                "Reconnect; your subscriptions resume with a fresh snapshot.",
            )
            return
        if now - conn.last_sent >= HEARTBEAT_INTERVAL and conn.depth == 0:
            conn.last_sent = now
            conn.offer({"type": "heartbeat", "timestamp": iso_now(now)})

    def _close(self, conn: Connection, code: int, error: str, message: str, details: str) -> None:
        conn.offer(error_frame(error, message, details, None, self.clock()))
        self.unregister_later(conn, code, message)

    def unregister_later(self, conn: Connection, code: int, reason: str) -> None:
        """Flush, close with ``code`` and forget the connection, without blocking the tick."""
        for sub_id in list(conn.subscriptions):
            self._detach(conn, sub_id)
        self.connections.pop(conn.connection_id, None)
        self.m_connections.set(len(self.connections))
        asyncio.get_running_loop().create_task(conn.flush_and_close(code, reason))

    def refresh(self, conn: Connection, expires_at: float) -> dict[str, Any]:
        """Accept a new token expiry for the connection (caller has verified the token)."""
        conn.token_expires_at = expires_at
        conn.expiry_warned = False
        return {
            "type": "token_refreshed",
            "expires_at": iso_now(expires_at),
            "timestamp": iso_now(self.clock()),
        }


def error_frame(
    code: str,
    message: str,
    details: str | None,
    subscription_id: str | None,
    now: float,
    validation_errors: list[dict[str, Any]] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """An ``error`` frame carrying the seed's error object."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "details": details,
        "request_id": request_id,
        "timestamp": iso_now(now),
    }
    if validation_errors:
        error["validation_errors"] = validation_errors
    frame: dict[str, Any] = {"type": "error", "error": error, "timestamp": iso_now(now)}
    if subscription_id is not None:
        frame["subscription_id"] = subscription_id
    return frame
