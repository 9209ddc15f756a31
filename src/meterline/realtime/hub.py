"""The hub: subscriptions, one computation per distinct subscription, and fan-out.

Every delivery tick (50 ms) the hub computes each *shared stream* that is due — a shared
stream is the (org, metrics, filters, window, frequency) that any number of subscriptions
on any connections hold — once, and offers the encoded update to every holder's outbox.
Offering never waits; slow readers are dealt with by their :class:`Connection`.

Delivery is spread in time rather than batched: streams of 1 s and more are given one of
the twenty 50 ms phases of a second (the least loaded by frames per second; placed afresh
when a busy loop made them miss a whole period), so no moment carries every socket's
frames at once, which is what makes a delivery's tail latency grow with the number of
sockets. Per-connection housekeeping (expiry, eviction, heartbeats) runs on its own
slower timer, never inside a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy
from prometheus_client import CollectorRegistry, Counter, Gauge

from meterline.auth import Principal
from meterline.clock import Clock, system_clock
from meterline.errors import (
    MeterlineError,
    QuotaExceededError,
    RateLimitExceededError,
    ValidationError,
)
from meterline.plans import PlanLimits, plan_limits
from meterline.query import QueryService
from meterline.ratelimit import Algorithm, Identity, MemoryStorage, Plan, RateLimiter, Rule
from meterline.realtime import catalogue
from meterline.realtime.alerts import AlertState, ThresholdAlert
from meterline.realtime.connection import (
    CLOSE_INVALID_TOKEN,
    CLOSE_TOKEN_EXPIRED,
    FIFO_FRAMES,
    Connection,
    ConnectionState,
    Outgoing,
    encode,
)
from meterline.realtime.protocol import SubscriptionSpec, Threshold, iso_now
from meterline.realtime.relay import GAP_PATIENCE, PUBLISH_INTERVAL, Relay
from meterline.realtime.seeding import query_window
from meterline.realtime.window import LiveWindows, OrgWindow

log = logging.getLogger(__name__)

TICK = 0.05
"""The delivery tick (seconds)."""
PHASES = round(1 / TICK)
"""Delivery phases in a second: a stream of 1 s or more is delivered at one of them."""
HOUSEKEEPING = 0.25
"""Seconds between housekeeping rounds over the connections (token expiry, write
deadlines, client silence, heartbeats, maximum age) and the node's own upkeep."""
LAG_MEMORY = 1.25
"""Seconds over which :attr:`StreamHub.lag` smooths the ticks' lateness."""
IDLE_WAKE = 1.0
"""The delivery loop wakes at least this often, due streams or not, to measure its lag."""
REAL_TIME_IDLE = 5.0
EXPIRY_LEAD = 60.0
MAX_SUBSCRIPTIONS = 20
"""Hard cap whatever the plan says (STREAM.md)."""
MAX_LIFETIME = 12 * 3600.0
SUBSCRIBE_BURST = 20
SUBSCRIBE_PER_SECOND = 5
"""Subscribe messages per connection: 5/s after a burst of 20 (a dashboard replaying its
subscriptions on reconnect fits, a script looping on subscribe does not)."""
ORG_SUBSCRIBE_REFILL = 10.0
"""Per org and node the burst is every allowed connection replaying every allowed
subscription (a fleet of dashboards reconnecting after a deploy), refilled over 10 s."""
RING_UPDATES = 32
"""``metric_update`` bodies kept per subscription for resume; a client further behind
gets ``resync`` (gap) and a snapshot (half the control FIFO, so a replay never evicts)."""
RESUME_KEEP = 300.0
"""Seconds a closed connection's rings stay available to a resuming client."""
ALERT_LOG = 1000
"""Alert events kept per org for replay after a reconnect."""
ADOPTION_GRACE = PUBLISH_INTERVAL + GAP_PATIENCE
"""Seconds an alert taken over from a peer keeps firing before this node's window may
resolve it: a peer publishes its traffic every PUBLISH_INTERVAL, and a lost publish is
asked for again after GAP_PATIENCE."""
REVOCATION_CHECK = 10.0
"""Seconds between checks that the clients holding streams are still valid."""
MAX_NODE_CONNECTIONS = 10_000
"""Streams one node holds before it answers new ones 1013 (try later), whatever the plans."""
OVERLOAD_LAG = 5.0
"""Seconds the tick loop may run late (smoothed) before new streams get 1013
(``METERLINE_STREAM_OVERLOAD_LAG``; 0 turns this off). Live updates are then seconds
behind for everyone: more streams would only make it worse."""
REBALANCE_TOLERANCE = 0.25
REBALANCE_SLACK = 5
"""A node sheds streams (close 4012) when it holds more than the cluster's mean by a
quarter plus five; it sheds at most a tenth of its streams per round, spread over
:data:`SHED_SPREAD` seconds so the clients do not all reconnect at once."""
SHED_SPREAD = 5.0
CLOSE_TRY_LATER = 1013
CONNECTION_RETRY_AFTER = 30
"""Seconds an org over its plan's streams is told to wait (``Retry-After``): a place
frees only when one of its own streams closes, so a tight retry loop cannot help."""
CLOSE_REBALANCING = 4012


class OverloadedError(MeterlineError):
    """This node takes no new streams right now; the client should retry with backoff."""

    code = "SERVER_OVERLOADED"
    status = 503


class ConnectionLimitError(QuotaExceededError):
    """The org already holds as many streams on this node as its plan allows (HTTP 429
    before an upgrade, else close 4429); :attr:`headers` says when to retry."""

    def __init__(self, most: int) -> None:
        super().__init__(
            "too many open streams for this org",
            details=(
                f"Your plan allows {most} per node. Close a stream you no longer need, or"
                f" retry in {CONNECTION_RETRY_AFTER} s; do not retry in a loop."
            ),
        )
        self.headers = {
            "Retry-After": str(CONNECTION_RETRY_AFTER),
            "X-RateLimit-Limit": str(most),
            "X-RateLimit-Remaining": "0",
        }


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


def subscribe_limiter(clock: Clock = system_clock) -> RateLimiter:
    """The subscribe-rate limiter: a token bucket per connection here, and one per org
    from :func:`org_subscribe_plan`; in memory, as subscriptions live on one node."""
    per_connection = Rule(
        "stream-subscribe-connection",
        SUBSCRIBE_PER_SECOND,
        1.0,
        Algorithm.TOKEN_BUCKET,
        # the connection id stands in the identity's consumer field
        per=("org", "consumer"),
        burst=SUBSCRIBE_BURST,
    )
    return RateLimiter(MemoryStorage(), [per_connection], clock=clock)


def org_subscribe_plan(name: str, limits: PlanLimits) -> Plan:
    """The per-org subscribe rule of a plan (see :data:`ORG_SUBSCRIBE_REFILL`)."""
    burst = limits.stream_connections * limits.stream_subscriptions
    rule = Rule(
        "stream-subscribe-org",
        max(1, round(burst / ORG_SUBSCRIBE_REFILL)),
        1.0,
        Algorithm.TOKEN_BUCKET,
        per=("org",),
        burst=burst,
    )
    return Plan(f"stream-{name}", (rule,))


@functools.lru_cache(maxsize=4096)
def _update_head(sub_id: str) -> str:
    """The start of a ``metric_update`` frame of ``sub_id``, up to its seq."""
    return f'{{"type":"metric_update","subscription_id":{json.dumps(sub_id)},"seq":'


def _phase_step(frequency: float) -> int | None:
    """Ticks between a stream's deliveries within a second: :data:`PHASES` for 1 s or
    more (one phase), fewer for a shorter period that divides the second evenly;
    ``None`` when it does not (such a stream keeps no phase)."""
    if frequency >= 1:
        return PHASES
    every = round(frequency / TICK)
    if every < 1 or PHASES % every or abs(every * TICK - frequency) > 1e-9:
        return None
    return every


def _grace() -> float:
    return float(os.environ.get("METERLINE_STREAM_TOKEN_GRACE", "25"))


def _heartbeat() -> float:
    return float(os.environ.get("METERLINE_STREAM_HEARTBEAT", "20"))


def _overload_lag() -> float:
    return float(os.environ.get("METERLINE_STREAM_OVERLOAD_LAG", str(OVERLOAD_LAG)))


def _load_interval() -> float:
    return float(os.environ.get("METERLINE_STREAM_LOAD_INTERVAL", "10"))


@dataclass(slots=True)
class _Ring:
    """Recent ``metric_update`` bodies of one subscription, by seq, for resume."""

    org_id: str
    subject: str
    subscription_id: str
    updates: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=RING_UPDATES))
    closed_at: float | None = None
    evicted: bool = False


Revoked = Callable[[str], bool]


class StreamHub:
    """Owns live windows, connections, shared streams and alert state of one server.

    Example:
        >>> hub = StreamHub(LiveWindows(), queries)  # doctest: +SKIP
        >>> writer.listeners.append(hub.windows.add_batch)  # doctest: +SKIP
        >>> await hub.start()  # doctest: +SKIP
    """

    def __init__(
        self,
        windows: LiveWindows,
        queries: QueryService,
        clock: Clock = system_clock,
        registry: CollectorRegistry | None = None,
        epoch: str = "",
        relay: Relay | None = None,
        revoked: Revoked | None = None,
        max_connections: int = MAX_NODE_CONNECTIONS,
    ) -> None:
        self.windows = windows
        self.max_connections = max_connections
        self.lag = 0.0
        """How late the tick loop runs, smoothed (seconds)."""
        self.overload_lag = _overload_lag()
        self.load_interval = _load_interval()
        self.peer_load: dict[str, tuple[int, float]] = {}
        """Other nodes' stream counts and when they said so (through the relay)."""
        self._last_load = 0.0
        self._shed_until = 0.0
        self.queries = queries
        self.clock = clock
        self.epoch = epoch
        self.relay = relay
        self.revoked = revoked
        self.grace = _grace()
        self.heartbeat = _heartbeat()
        self.rings: dict[tuple[str, str], _Ring] = {}
        self._last_ring: dict[tuple[str, str, str], str] = {}
        self.alert_log: dict[str, deque[dict[str, Any]]] = {}
        self._alert_events = 0
        self._last_revocation_check = 0.0
        self._background: set[asyncio.Task[Any]] = set()
        self.connections: dict[str, Connection] = {}
        self.streams: dict[tuple[Any, ...], SharedStream] = {}
        self.alerts: dict[tuple[str, ...], ThresholdAlert] = {}
        # called with (org_id, alert frame) on every firing and resolution; must not block
        self.alert_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._opened: dict[str, float] = {}
        self.subscribe_limiter = subscribe_limiter(clock)
        self._subscribe_plans: dict[str, Plan] = {}
        self._task: asyncio.Task[None] | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._per_org: dict[str, int] = {}
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
        self.m_write_path = Gauge(
            "meterline_stream_connections_by_write_path",
            "Open streams by how frames reach the socket: direct (whole frames, one write"
            " per loop step) or asgi (one send per frame)",
            ["path"],
            registry=r,
        )
        self.m_lag = Gauge(
            "meterline_stream_tick_lag_seconds",
            "How late the stream's delivery tick runs (smoothed); new streams get 1013"
            " past METERLINE_STREAM_OVERLOAD_LAG",
            registry=r,
        )
        self.m_revoked = Counter(
            "meterline_stream_revoked_closes_total",
            "Stream connections closed because their client was revoked",
            registry=r,
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the delivery and housekeeping loops (and the Redis relay when there is
        one)."""
        if self.relay is not None:
            self.relay.on_control.append(self._on_control)
            await self.relay.start()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())
        self._housekeeper = loop.create_task(self._run_housekeeping())

    async def stop(self) -> None:
        """Close every connection with 1001 (clients reconnect) and stop ticking."""
        if self.relay is not None:
            await self.relay.stop()
        for task in (self._task, self._housekeeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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
        return self._per_org.get(org_id, 0)

    def _forget(self, conn: Connection) -> None:
        """Take ``conn`` off the node's books (once, whichever way it leaves)."""
        if self.connections.pop(conn.connection_id, None) is None:
            return
        org_id = conn.principal.org_id
        left = self._per_org.get(org_id, 1) - 1
        if left > 0:
            self._per_org[org_id] = left
        else:
            self._per_org.pop(org_id, None)
        self.m_connections.set(len(self.connections))

    @staticmethod
    def _plan(plan: str) -> PlanLimits:
        try:
            return plan_limits(plan)
        except ValueError:
            return plan_limits("basic")

    def connection_limit(self, plan: str) -> int:
        """How many concurrent streams an org on ``plan`` may hold per node."""
        return self._plan(plan).stream_connections

    def subscription_limit(self, plan: str) -> int:
        """How many subscriptions one connection on ``plan`` may hold."""
        return min(MAX_SUBSCRIPTIONS, self._plan(plan).stream_subscriptions)

    def message_limit(self, plan: str) -> int:
        """The largest client message, in bytes, a connection on ``plan`` may send."""
        return self._plan(plan).stream_message_bytes

    def limits(self, plan: str) -> dict[str, Any]:
        """The limits announced in ``connected`` and ``subscribed``."""
        return {
            "max_message_bytes": self.message_limit(plan),
            "max_subscriptions": self.subscription_limit(plan),
            "max_connections": self.connection_limit(plan),
            "outbox_frames": FIFO_FRAMES,
        }

    def admit(self, principal: Principal) -> None:
        """Check that a new stream of ``principal`` may open now, without taking a place:
        raise :class:`OverloadedError` when this node is full or running late (close 1013)
        and ``QUOTA_EXCEEDED`` (429, with ``Retry-After``) when the org holds its plan's
        streams on this node (close 4429). Callers may check before a WebSocket upgrade;
        :meth:`register` checks again when it takes the place."""
        if len(self.connections) >= self.max_connections:
            raise OverloadedError(
                "this server holds as many streams as it may",
                details="Reconnect with backoff; another server may take you.",
            )
        if self.overload_lag and self.lag > self.overload_lag:
            raise OverloadedError(
                "this server is overloaded and takes no new streams right now",
                details=f"Its updates run {self.lag:.1f} s late; reconnect with backoff.",
            )
        most = self.connection_limit(principal.plan)
        if self.org_connections(principal.org_id) >= most:
            raise ConnectionLimitError(most)

    def register(self, conn: Connection) -> dict[str, Any]:
        """Admit a connection (see :meth:`admit`, whose errors it raises) and return its
        ``connected`` frame."""
        principal = conn.principal
        self.admit(principal)
        conn.transition(ConnectionState.SUBSCRIBED)
        conn.on_evict = self._evicted
        now = self.clock()
        conn.last_sent = now
        self._opened[conn.connection_id] = now
        self.connections[conn.connection_id] = conn
        self._per_org[principal.org_id] = self._per_org.get(principal.org_id, 0) + 1
        self.m_connections.set(len(self.connections))
        conn.start_writer(self.clock)
        return {
            "type": "connected",
            "connection_id": conn.connection_id,
            "epoch": self.epoch,
            "heartbeat_interval": self.heartbeat,
            "token_expires_at": iso_now(conn.token_expires_at),
            "limits": self.limits(principal.plan),
            "timestamp": iso_now(now),
        }

    def unregister(self, conn: Connection) -> None:
        """Forget a connection and its subscriptions (their rings stay for resume)."""
        for sub_id in list(conn.subscriptions):
            self._detach(conn, sub_id, keep_ring=True)
        self._forget(conn)
        self._opened.pop(conn.connection_id, None)
        conn.stop()

    def _evicted(self, conn: Connection) -> None:
        self.m_evictions.inc()
        for sub_id in list(conn.subscriptions):
            ring = self.rings.get((conn.connection_id, sub_id))
            if ring is not None:
                ring.evicted = True
            self._detach(conn, sub_id, keep_ring=True)
        self._forget(conn)

    # -- subscriptions --------------------------------------------------------------------

    def _take_token(self, conn: Connection) -> None:
        """Count a subscribe message, or raise ``RATE_LIMIT_EXCEEDED`` saying when to retry."""
        principal = conn.principal
        plan = self._subscribe_plans.get(principal.plan)
        if plan is None:
            limits = self._plan(principal.plan)
            plan = self._subscribe_plans[principal.plan] = org_subscribe_plan(
                principal.plan, limits
            )
        decision = self.subscribe_limiter.hit(
            Identity(org=principal.org_id, consumer=conn.connection_id), plan=plan
        )
        if decision.allowed:
            return
        retry = max(0.1, round(decision.retry_after, 1))
        rule = decision.rule
        if rule is not None and rule.name == "stream-subscribe-org":
            scope = (
                f"your org may send {rule.limit} per second on this node after a burst of"
                f" {rule.burst}"
            )
        else:
            scope = (
                f"a connection may send {SUBSCRIBE_PER_SECOND} per second after a burst"
                f" of {SUBSCRIBE_BURST}"
            )
        raise RateLimitExceededError(
            "too many subscribe messages",
            details=f"Retry in {retry} s: {scope}. Re-subscribing replaces a subscription.",
        )

    async def subscribe(self, conn: Connection, spec: SubscriptionSpec, resume: Any = None) -> None:
        """Attach (or replace) a subscription, answer ``subscribed`` and a first snapshot.

        ``resume`` ({seq, epoch}) from a reconnecting client continues its sequence when
        the epoch is this node's; otherwise a ``resync`` (node_restart) precedes the snapshot.
        """
        self._take_token(conn)
        replacing = spec.subscription_id in conn.subscriptions
        most = self.subscription_limit(conn.principal.plan)
        if not replacing and len(conn.subscriptions) >= most:
            raise QuotaExceededError(
                f"a connection may hold at most {most} subscriptions on this plan",
                details="Unsubscribe first, or open another connection.",
            )
        if replacing:
            self._detach(conn, spec.subscription_id)
        org_id = conn.principal.org_id
        conn.subscriptions[spec.subscription_id] = spec
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
        await self._adopt_shared_alerts(conn, spec, now)
        recovered, cursor = await self._resume(conn, spec.subscription_id, resume, now)
        self._arm_alerts(conn, spec, now, announce=cursor is None)
        body = await self._compute(org_id, spec, now)
        if recovered is not None:
            body["recovered"] = recovered
        conn.offer_update(spec.subscription_id, self._frame(conn, spec.subscription_id, body))
        self._evaluate(conn, spec, body, now)
        if not conn.open or conn.subscriptions.get(spec.subscription_id) is not spec:
            return  # closed, unsubscribed or replaced while the snapshot was computed
        # Joined to the shared computation only now, so no delivery overtakes the
        # replayed updates and the snapshot.
        shared_key = (org_id, *spec.key)
        stream = self.streams.get(shared_key)
        if stream is None:
            stream = self.streams[shared_key] = SharedStream(org_id, spec)
            stream.next_due = self._first_due(spec.frequency_seconds, self.clock())
            self._wakeup.set()  # the delivery loop may be sleeping past its first due
        stream.holders[(conn.connection_id, spec.subscription_id)] = conn

    def _first_due(
        self,
        frequency: float,
        now: float,
        load: list[float] | None = None,
        weight: float = 1.0,
    ) -> float:
        """When a new shared stream is first due: ``frequency`` from now, moved earlier
        (by less than a second, or than its period when that is shorter) to the delivery
        phase that carries the fewest frames per second, so streams created together —
        and their sockets' frames — do not all land on the same tick. With ``load``
        (from :meth:`_phase_load`) the chosen phase's entry grows by ``weight``, so
        several streams placed in a row spread out too."""
        every = _phase_step(frequency)
        if every is None:
            return now + frequency
        if load is None:
            load = self._phase_load()
        cost = [sum(load[phase::every]) for phase in range(every)]
        target = cost.index(min(cost))
        for phase in range(target, PHASES, every):
            load[phase] += weight
        step = math.ceil((now + frequency - min(frequency, 1.0) + TICK) / TICK)
        while step % every != target:
            step += 1
        return step * TICK

    @staticmethod
    def _weight(stream: SharedStream) -> float:
        """Frames per second a stream puts on each phase it is delivered at."""
        return max(1, len(stream.holders)) / max(stream.spec.frequency_seconds, 1.0)

    def _phase_load(self, leave_out: set[int] | None = None) -> list[float]:
        """Frames per second delivered at each of the :data:`PHASES` phases of a second
        (without the streams whose ``id`` is in ``leave_out``)."""
        load = [0.0] * PHASES
        for stream in self.streams.values():
            every = _phase_step(stream.spec.frequency_seconds)
            if every is None or (leave_out and id(stream) in leave_out):
                continue
            weight = self._weight(stream)
            for phase in range(round(stream.next_due / TICK) % every, PHASES, every):
                load[phase] += weight
        return load

    def _reschedule(self, due: list[SharedStream], now: float) -> None:
        """Set the next delivery of the streams being delivered now: one period on, in
        the same phase; but a stream that missed a whole period (the loop was busy, as
        while a crowd connects) is placed afresh, so late streams do not all pile onto
        this tick and stay there."""
        missed = [s for s in due if s.next_due + s.spec.frequency_seconds < now + TICK / 2]
        for stream in due:
            stream.next_due += stream.spec.frequency_seconds
        if not missed:
            return
        load = self._phase_load(leave_out={id(s) for s in missed})
        for stream in missed:
            frequency = stream.spec.frequency_seconds
            stream.next_due = self._first_due(frequency, now, load, self._weight(stream))
        log.debug("%d stream deliveries missed a period; placed them afresh", len(missed))

    async def _resume(
        self, conn: Connection, sub_id: str, resume: Any, now: float
    ) -> tuple[bool | None, str | None]:
        """Continue a reconnecting client's subscription: replay the updates it missed
        (same node) and the alert events after its last one. Returns whether everything
        was recovered (``None`` when no resume was asked) and the alert cursor."""
        if not isinstance(resume, dict):
            return None, None
        recovered = True
        seq = resume.get("seq")
        ring = self._find_ring(conn, sub_id, resume.get("connection_id"))
        same_node = resume.get("epoch") == self.epoch and isinstance(seq, int) and seq >= 0
        if not same_node or (ring is not None and ring.evicted):
            # Updates conflated or dropped before an eviction are not worth replaying.
            recovered = False
            conn.offer(
                {
                    "type": "resync",
                    "subscription_id": sub_id,
                    "reason": "node_restart" if not same_node else "slow_consumer",
                    "timestamp": iso_now(now),
                }
            )
        else:
            assert isinstance(seq, int)
            updates = list(ring.updates) if ring is not None else []
            missed = [u for u in updates if u[0] > seq]
            if not updates:
                recovered = seq == 0  # nothing kept to check the client's position against
            elif missed and missed[0][0] > seq + 1:
                # The ring no longer reaches back to the client's last update.
                recovered, missed = False, []
                conn.offer(
                    {
                        "type": "resync",
                        "subscription_id": sub_id,
                        "reason": "gap",
                        "timestamp": iso_now(now),
                    }
                )
            last = max([seq, *(u[0] for u in missed)])
            for update_seq, encoded in missed:
                frame = self._splice(sub_id, update_seq, encoded)
                conn.offer({**json.loads(frame), "replayed": True})
            conn.seq[sub_id] = max(conn.seq.get(sub_id, 0), last)
        cursor = resume.get("last_alert_id")
        if isinstance(cursor, str):
            recovered = await self._replay_alerts(conn, sub_id, cursor) and recovered
            return recovered, cursor
        return recovered, None

    def _find_ring(self, conn: Connection, sub_id: str, old_id: Any) -> _Ring | None:
        p = conn.principal
        if not isinstance(old_id, str):
            old_id = self._last_ring.get((p.org_id, p.subject, sub_id))
        ring = self.rings.get((old_id, sub_id)) if isinstance(old_id, str) else None
        if ring is None or ring.org_id != p.org_id or ring.subject != p.subject:
            return None
        return ring

    def _record(self, conn: Connection, sub_id: str, seq: int, encoded: str) -> None:
        ring = self.rings.get((conn.connection_id, sub_id))
        if ring is None:
            p = conn.principal
            ring = self.rings[(conn.connection_id, sub_id)] = _Ring(p.org_id, p.subject, sub_id)
            self._last_ring[(p.org_id, p.subject, sub_id)] = conn.connection_id
        ring.updates.append((seq, encoded))

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

    def _detach(self, conn: Connection, subscription_id: str, keep_ring: bool = False) -> None:
        spec = conn.subscriptions.pop(subscription_id, None)
        ring = self.rings.get((conn.connection_id, subscription_id))
        if ring is not None:
            if keep_ring:
                ring.closed_at = self.clock()
            else:
                del self.rings[(conn.connection_id, subscription_id)]
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

    def _arm_alerts(
        self, conn: Connection, spec: SubscriptionSpec, now: float, announce: bool = True
    ) -> None:
        for rule in spec.thresholds:
            key = self._alert_key(conn, spec.subscription_id, rule.metric)
            found = self.alerts.get(key)
            if found is None or found.rule != rule:
                self.alerts[key] = ThresholdAlert(rule, "|".join(key))
            elif found.state is AlertState.FIRING and announce:
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
                logged = self._log_alert(conn, message, now)
                conn.offer(logged)
                for listener in self.alert_listeners:
                    listener(conn.principal.org_id, logged)

    def _log_alert(self, conn: Connection, message: dict[str, Any], now: float) -> dict[str, Any]:
        """Give an alert event its ``event_id`` and keep it for replay after a reconnect
        (in memory, and in Redis for the other nodes when there is a relay)."""
        self._alert_events += 1
        # Time-ordered ids so a cursor compares across restarts and nodes.
        message["event_id"] = f"{int(now * 1000):013d}-{self.epoch}-{self._alert_events:08d}"
        org_id = conn.principal.org_id
        event = {**message, "_subject": conn.principal.subject}
        self.alert_log.setdefault(org_id, deque(maxlen=ALERT_LOG)).append(event)
        if self.relay is not None:
            key = self._alert_key(conn, message["subscription_id"], message["metric"])
            alert = self.alerts.get(key)
            if alert is not None:
                self._spawn(self.relay.record_alert(org_id, event, _shared_state(key, alert)))
        return message

    async def _adopt_shared_alerts(
        self, conn: Connection, spec: SubscriptionSpec, now: float
    ) -> None:
        """Take over an alert another node holds for this subscription (same ``alert_id``);
        a firing one stays firing until the peers' traffic has had time to arrive here."""
        if self.relay is None:
            return
        for rule in spec.thresholds:
            key = self._alert_key(conn, spec.subscription_id, rule.metric)
            shared = await self.relay.alert_state(conn.principal.org_id, "|".join(key))
            if shared is None or tuple(shared["rule"]) != _rule_tuple(rule):
                continue
            alert = ThresholdAlert(rule, "|".join(key))
            alert.alert_id, alert.since = shared["alert_id"], float(shared["since"])
            alert.state = AlertState(shared["state"])
            if alert.state is AlertState.FIRING:
                alert.hold(now + ADOPTION_GRACE)
            self.alerts[key] = alert

    async def _replay_alerts(self, conn: Connection, sub_id: str, cursor: str) -> bool:
        """Re-send this subscription's alert events after ``cursor``; False when the log
        no longer reaches back that far."""
        org_id = conn.principal.org_id
        shared = await self.relay.alert_events(org_id) if self.relay is not None else None
        events = shared if shared is not None else list(self.alert_log.get(org_id) or ())
        complete = not events or events[0]["event_id"] <= cursor or len(events) < ALERT_LOG
        for event in events:
            mine = (
                event["subscription_id"] == sub_id and event["_subject"] == conn.principal.subject
            )
            if mine and event["event_id"] > cursor:
                conn.offer({k: v for k, v in event.items() if k != "_subject"} | {"replayed": True})
        return complete

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
            current = _live_values(window, spec, start, end)
            previous = _live_values(window, spec, start - width, start)
        else:
            current, previous = await asyncio.gather(
                asyncio.to_thread(_store_values, self.queries, org_id, spec, start, end),
                asyncio.to_thread(_store_values, self.queries, org_id, spec, start - width, start),
            )
        values, before = current[0], previous[0]
        metrics: list[dict[str, Any]] = []
        for m in spec.metrics:
            item: dict[str, Any] = {
                "name": m,
                "value": values[m],
                "change": catalogue.change(values[m], before[m]),
                "unit": catalogue.unit(m),
            }
            if spec.aggregation == "raw":
                item["points"] = [{"timestamp": iso_now(t), "value": v[m]} for t, v in current[1]]
            metrics.append(item)
        body: dict[str, Any] = {
            "metrics": metrics,
            "window": {"from": iso_now(start), "to": iso_now(end)},
            "timestamp": iso_now(now),
        }
        if spec.aggregation != "avg":
            body["aggregation"] = {
                "method": spec.aggregation,
                "bucket": f"{bucket_seconds(width)}s",
            }
        return body

    def _frame(self, conn: Connection, sub_id: str, body: dict[str, Any]) -> Outgoing:
        seq, encoded = conn.next_seq(sub_id), encode(body)
        self._record(conn, sub_id, seq, encoded)
        return Outgoing(self._splice(sub_id, seq, encoded))

    @staticmethod
    def _splice(sub_id: str, seq: int, encoded_body: str) -> str:
        return f"{_update_head(sub_id)}{seq},{encoded_body[1:]}"

    async def _deliver(
        self,
        stream: SharedStream,
        now: float,
        touched: dict[str, Connection] | None = None,
    ) -> None:
        """Compute ``stream`` and queue its update for every holder; the sockets are
        written at once, or left to the caller when it passes ``touched`` (it then writes
        each connection collected there once)."""
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
        if touched is not None:
            self._fan_out(stream, body, now, touched)
            return
        touched = {}
        self._fan_out(stream, body, now, touched)
        for conn in touched.values():
            conn.push()

    def _fan_out(
        self,
        stream: SharedStream,
        body: dict[str, Any],
        now: float,
        touched: dict[str, Connection],
    ) -> None:
        """Queue one computed update for every holder, and add the holders' connections
        to ``touched`` (for the caller to :meth:`Connection.push`). The body is encoded
        once; holders whose subscription id and seq agree (the same dashboard opened many
        times) share one frame object, so its wire bytes are built once too."""
        encoded = encode(body)
        frames: dict[tuple[str, int], Outgoing] = {}
        rings = self.rings
        for key, conn in list(stream.holders.items()):
            sub_id = key[1]
            seq = conn.next_seq(sub_id)
            frame = frames.get((sub_id, seq))
            if frame is None:
                frame = frames[(sub_id, seq)] = Outgoing(self._splice(sub_id, seq, encoded))
            if conn.queue_update(sub_id, frame):
                touched[key[0]] = conn
            ring = rings.get(key)
            if ring is None:
                self._record(conn, sub_id, seq, encoded)
            else:
                ring.updates.append((seq, encoded))
            spec = conn.subscriptions.get(sub_id)
            if spec is not None and spec.thresholds:
                self._evaluate(conn, spec, body, now)

    # -- the loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        """The delivery loop. It wakes on the tick of the next due stream (ticks fall
        half a tick into each phase, so a stream due at its phase is never missed by a
        wake-up a hair early), at least every :data:`IDLE_WAKE` seconds to keep
        measuring its lag, and at once when a new stream appears; ticks it is too late
        for are skipped, not run back to back."""
        last = self.clock()
        while True:
            now = self.clock()
            due = min((s.next_due for s in self.streams.values()), default=now + IDLE_WAKE)
            wake = math.ceil(min(max(due, now), now + IDLE_WAKE) / TICK - 0.5) * TICK + TICK / 2
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), max(0.0, wake - now))
                continue  # a new stream: plan again
            except TimeoutError:
                pass
            late = 0.0
            try:
                late = await self.tick(wake)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream tick failed")
            now = self.clock()
            weight = min(1.0, max(0.0, now - last) / LAG_MEMORY)
            last = now
            self.lag += weight * (late - self.lag)
            self.m_lag.set(self.lag)

    async def tick(self, scheduled: float | None = None) -> float:
        """Deliver every shared stream that is due: compute each, queue its frames, then
        write every socket that got any once. On time that is one stream (one frame per
        socket); when the loop has fallen behind, the streams due together share their
        sockets' writes — fewer system calls exactly when the CPU is short. Frames are
        stamped with the tick's time, so a wait behind other streams shows as delay.
        Returns how late the writes started after ``scheduled`` (the planned time)."""
        now = self.clock()
        start = now if scheduled is None else scheduled
        loop = asyncio.get_running_loop()
        due = [s for s in self.streams.values() if not s.busy and now >= s.next_due]
        self._reschedule(due, now)
        touched: dict[str, Connection] = {}
        for stream in due:
            stream.busy = True
            if stream.spec.live:
                await self._deliver(stream, now, touched)  # in memory: never yields
            else:
                loop.create_task(self._deliver(stream, now))
        late = max(0.0, self.clock() - start)
        for conn in touched.values():
            conn.push()
        return late

    async def _run_housekeeping(self) -> None:
        """Look after the connections and the node every :data:`HOUSEKEEPING` seconds,
        apart from deliveries."""
        while True:
            await asyncio.sleep(HOUSEKEEPING)
            try:
                self.housekeep(self.clock())
            except Exception:
                log.exception("stream housekeeping failed")

    def housekeep(self, now: float) -> None:
        """One housekeeping round: evict stalled or silent connections, warn of and
        enforce token expiry and maximum age, send heartbeats, update the gauges, prune
        old live buckets and resume rings, and start revocation and load checks."""
        deepest = direct = 0
        for conn in list(self.connections.values()):
            deepest = max(deepest, conn.depth)
            direct += conn.direct is not None
            self._housekeep(conn, now)
        self.m_depth.set(deepest)
        self.m_write_path.labels("direct").set(direct)
        self.m_write_path.labels("asgi").set(len(self.connections) - direct)
        if now - self._last_prune > 10:
            self._last_prune = now
            self.windows.prune(now)
            stale = now - RESUME_KEEP
            for key in [k for k, r in self.rings.items() if r.closed_at and r.closed_at < stale]:
                del self.rings[key]
            for owner, conn_id in list(self._last_ring.items()):
                if (conn_id, owner[2]) not in self.rings:
                    del self._last_ring[owner]
        if self.revoked is not None and now - self._last_revocation_check > REVOCATION_CHECK:
            self._last_revocation_check = now
            self._spawn(self._check_revocations())
        if self.relay is not None and now - self._last_load >= self.load_interval:
            self._last_load = now
            self._spawn(self._share_load(now))

    # -- balancing across nodes -----------------------------------------------------------

    async def _share_load(self, now: float) -> None:
        """Tell the other nodes how many streams this one holds, then shed the excess
        over the cluster's mean (close 4012) so a load balancer's new picks even out."""
        assert self.relay is not None
        await self.relay.publish_control(
            {"k": "load", "node": self.epoch, "n": len(self.connections), "at": now}
        )
        self.rebalance(now)

    def rebalance(self, now: float) -> int:
        """Shed streams when this node holds well over the mean of the nodes heard from
        lately; returns how many it starts closing."""
        for node in [
            k for k, (_, at) in self.peer_load.items() if now - at > 10 * self.load_interval
        ]:
            del self.peer_load[node]  # a node that stopped (a restarted one has a new epoch)
        fresh = [n for n, at in self.peer_load.values() if now - at <= 3 * self.load_interval]
        if not fresh or now < self._shed_until:
            return 0
        mine = len(self.connections)
        mean = (mine + sum(fresh)) / (len(fresh) + 1)
        if mine <= mean * (1 + REBALANCE_TOLERANCE) + REBALANCE_SLACK:
            return 0
        count = min(int(mine - mean), max(1, mine // 10))
        self._shed_until = now + 3 * self.load_interval  # let the peers' counts catch up
        return self.shed(count)

    def shed(self, count: int) -> int:
        """Close ``count`` streams (the youngest: they have the least state to rebuild)
        with 4012 after an ``error`` frame, spread over :data:`SHED_SPREAD` seconds."""
        chosen = sorted(
            self.connections.values(), key=lambda c: -self._opened.get(c.connection_id, 0)
        )
        loop = asyncio.get_running_loop()
        for conn in chosen[:count]:
            loop.call_later(random.uniform(0, SHED_SPREAD), self._shed_one, conn)
        log.info(
            "stream rebalancing: shedding %d of %d streams", min(count, len(chosen)), len(chosen)
        )
        return min(count, len(chosen))

    def _shed_one(self, conn: Connection) -> None:
        if self.connections.get(conn.connection_id) is not conn:
            return
        self._close(
            conn,
            CLOSE_REBALANCING,
            "NODE_REBALANCING",
            "this server is handing streams to less busy ones",
            "Reconnect now (with jitter); resume your subscriptions with their seq and epoch.",
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _check_revocations(self) -> None:
        """Close the streams of clients revoked since they connected (by any process: the
        admin CLI only writes the metadata database)."""
        assert self.revoked is not None
        check = self.revoked
        subjects = {c.principal.subject for c in self.connections.values()}
        gone = await asyncio.to_thread(lambda: [s for s in subjects if check(s)])
        for subject in gone:
            self.close_subject(subject)

    async def revoke(self, subject: str) -> None:
        """Close ``subject``'s streams here and, through Redis, on every other node."""
        self.close_subject(subject)
        if self.relay is not None:
            await self.relay.publish_control({"k": "revoke", "subject": subject})

    def _on_control(self, body: dict[str, Any]) -> None:
        if body.get("k") == "revoke" and isinstance(body.get("subject"), str):
            self.close_subject(body["subject"])
        elif body.get("k") == "load" and body.get("node") != self.epoch:
            count, node = body.get("n"), body.get("node")
            if isinstance(count, int) and isinstance(node, str):
                self.peer_load[node] = (count, self.clock())

    def close_subject(self, subject: str) -> int:
        """Send AUTH_TOKEN_INVALID and close 4401 on every stream of ``subject`` here."""
        closing = [c for c in self.connections.values() if c.principal.subject == subject]
        for conn in closing:
            self.m_revoked.inc()
            self._close(
                conn,
                CLOSE_INVALID_TOKEN,
                "AUTH_TOKEN_INVALID",
                "the client of this stream has been revoked",
                "Ask your administrator for a new client; do not reconnect with this token.",
            )
        return len(closing)

    def _housekeep(self, conn: Connection, now: float) -> None:
        if conn.drops:
            self.m_drops.inc(conn.drops)
            conn.drops = 0
        if conn.stalled(now):
            conn.evict("send pending past the write deadline")
            return
        if conn.pings_expected and now - conn.last_received > 2 * self.heartbeat:
            # A client that pings and then falls silent is gone; do not wait for TCP.
            conn.evict("no frame from the client for two heartbeat intervals")
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
        if now - conn.last_sent >= self.heartbeat and conn.depth == 0:
            conn.last_sent = now
            conn.offer({"type": "heartbeat", "timestamp": iso_now(now)})

    def _close(self, conn: Connection, code: int, error: str, message: str, details: str) -> None:
        conn.offer(error_frame(error, message, details, None, self.clock()))
        self.unregister_later(conn, code, message)

    def unregister_later(self, conn: Connection, code: int, reason: str) -> None:
        """Flush, close with ``code`` and forget the connection, without blocking the tick."""
        for sub_id in list(conn.subscriptions):
            self._detach(conn, sub_id, keep_ring=True)
        self._forget(conn)
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


Points = list[tuple[int, dict[str, Any]]]


def _rule_tuple(rule: Threshold) -> tuple[Any, ...]:
    return (rule.metric, rule.condition, rule.value, rule.duration, rule.keep_firing_for)


def _shared_state(key: tuple[str, ...], alert: ThresholdAlert) -> dict[str, Any]:
    """What another node needs to continue an alert: its id, state, start and rule."""
    return {
        "key": "|".join(key),
        "alert_id": alert.alert_id,
        "state": alert.state.value,
        "since": alert.since,
        "rule": list(_rule_tuple(alert.rule)),
    }


def bucket_seconds(window_seconds: int) -> int:
    """The bucket an ``aggregation`` combines: minutes up to 6 h, hours beyond (the
    granularities ``POST /v2/query`` answers)."""
    return 60 if window_seconds <= 6 * 3600 else 3600


def _combine(method: str, window_value: Any, buckets: list[Any]) -> Any:
    """One value from per-bucket values: the window's own value for ``avg`` and ``raw``,
    else the sum, minimum, maximum or 95th percentile of the buckets that have one."""
    if method in ("avg", "raw"):
        return window_value
    present = [float(v) for v in buckets if isinstance(v, int | float)]
    if not present:
        return None
    if method == "sum":
        out = math.fsum(present)
    elif method == "min":
        out = min(present)
    elif method == "max":
        out = max(present)
    else:
        out = float(numpy.percentile(present, 95))
    return round(out, 6)


def _bucket_starts(start: int, end: int, step: int) -> list[int]:
    first = start - start % step
    return list(range(first, end, step))


def _live_values(
    window: OrgWindow, spec: SubscriptionSpec, start: int, end: int
) -> tuple[dict[str, Any], Points]:
    """Metric values of ``[start, end)`` from memory, aggregated as the subscription asks,
    and the per-bucket points (only when the aggregation needs them)."""
    minutes = (end - start) / 60
    totals = window.totals(start, end, spec.filters)
    whole = {m: catalogue.compute(m, totals, minutes) for m in spec.metrics}
    if spec.aggregation == "avg":
        return whole, []
    step = bucket_seconds(end - start)
    points: Points = []
    for bucket in _bucket_starts(start, end, step):
        # Buckets are clipped to the window and rated per full bucket, as the query does.
        part = window.totals(max(bucket, start), min(bucket + step, end), spec.filters)
        points.append((bucket, {m: catalogue.compute(m, part, step / 60) for m in spec.metrics}))
    values = {
        m: _combine(spec.aggregation, whole[m], [p[m] for _, p in points]) for m in spec.metrics
    }
    return values, points


def _store_values(
    queries: QueryService, org_id: str, spec: SubscriptionSpec, start: int, end: int
) -> tuple[dict[str, Any], Points]:
    """Like :func:`_live_values` for windows longer than memory holds."""
    whole = query_window(queries, org_id, spec.metrics, spec.filters, start, end)[0]
    if spec.aggregation == "avg":
        return whole, []
    step = bucket_seconds(end - start)
    granularity = "minute" if step == 60 else "hour"
    rows = query_window(queries, org_id, spec.metrics, spec.filters, start, end, granularity)
    points: Points = list(zip(_bucket_starts(start, end, step), rows, strict=False))
    values = {
        m: _combine(spec.aggregation, whole[m], [p[m] for _, p in points]) for m in spec.metrics
    }
    return values, points


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
