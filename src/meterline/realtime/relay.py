"""Live windows across nodes: per-node per-second partial aggregates over Redis pub/sub.

Each node folds its own ingest into its live windows directly, and every 250 ms
publishes what it added since the last publish (the per-second cells of each org) on
``meterline:live:org:<org_id>``, numbered by a per-node sequence. Every node
subscribes to every org channel and merges the partials of the *other* nodes; its own
come back from Redis too and are skipped, so nothing is counted twice.

Redis is a transport, not a store, so losing it must not lose numbers:

- partials that cannot be published stay queued (in order) until Redis is back;
- each node keeps the partials it published for the live span (a replay ring);
- a receiver notices a gap in a node's sequence and asks for a replay, and on every
  (re)subscription it says ``hello`` with what it has seen, so peers replay the rest —
  which is also how a node that starts late gets the last hours of its peers' traffic.

Control messages (replay requests, ``hello``, client revocation) travel on
``meterline:live:control``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pyarrow as pa
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from meterline.clock import Clock, system_clock
from meterline.realtime.sketch import LatencySketch
from meterline.realtime.window import KEPT_SECONDS, Cell, CellKey, LiveWindows, OrgWindow

log = logging.getLogger(__name__)

ORG_PREFIX = "meterline:live:org:"
CONTROL_CHANNEL = "meterline:live:control"
PUBLISH_INTERVAL = 0.25
HEAD_INTERVAL = 1.0
"""Seconds between a node's announcements of its last published sequence, so peers
notice what they missed even when the node has nothing new to publish."""
GAP_PATIENCE = 1.0
"""Seconds a hole in a node's sequence may stay open before a replay is requested."""
ALERT_STREAM = "meterline:live:alerts:"
ALERT_STATE = "meterline:live:alert-state:"
ALERT_EVENTS = 1000
RING_BYTES = 64 * 1024 * 1024
UNSENT_BYTES = 64 * 1024 * 1024
BACKOFF_MIN, BACKOFF_MAX = 0.2, 5.0


def encode_partial(origin: str, seq: int, org_id: str, window: OrgWindow) -> bytes:
    """One org's cells added on ``origin`` since its previous publish, as msgpack."""
    cells: list[list[Any]] = []
    for second, by_key in window.seconds.items():
        for key, c in by_key.items():
            sketch = c.sketch
            cells.append(
                [
                    second,
                    *key,
                    c.all_count,
                    c.req_count,
                    c.req_client_errors,
                    c.req_server_errors,
                    c.req_latency_count,
                    c.req_latency_sum,
                    c.req_bytes,
                    c.llm_count,
                    c.llm_input_tokens,
                    c.llm_output_tokens,
                    c.llm_cost,
                    list(sketch.bins.keys()),
                    list(sketch.bins.values()),
                    sketch.zero_count,
                ]
            )
    return msgspec.msgpack.encode({"k": "p", "o": origin, "s": seq, "g": org_id, "c": cells})


def decode_cells(cells: Sequence[Sequence[Any]]) -> list[tuple[int, CellKey, Cell]]:
    """The (second, key, cell) triples of a partial's ``c`` field."""
    out: list[tuple[int, CellKey, Cell]] = []
    for row in cells:
        sketch = LatencySketch()
        sketch.bins = dict(zip(row[19], row[20], strict=True))
        sketch.zero_count = int(row[21])
        sketch.count = sketch.zero_count + sum(sketch.bins.values())
        cell = Cell(
            all_count=row[8],
            req_count=row[9],
            req_client_errors=row[10],
            req_server_errors=row[11],
            req_latency_count=row[12],
            req_latency_sum=row[13],
            req_bytes=row[14],
            llm_count=row[15],
            llm_input_tokens=row[16],
            llm_output_tokens=row[17],
            llm_cost=row[18],
            sketch=sketch,
        )
        key: CellKey = (row[1], row[2], row[3], int(row[4]), row[5], row[6], row[7])
        out.append((int(row[0]), key, cell))
    return out


@dataclass(slots=True)
class _Progress:
    """What has been merged from one origin: everything up to ``watermark``, plus ``ahead``."""

    watermark: int = 0
    ahead: set[int] = field(default_factory=set)
    gap_since: float | None = None
    asked_at: float = 0.0

    def accept(self, seq: int) -> bool:
        """True (and recorded) when ``seq`` has not been merged before."""
        if seq <= self.watermark or seq in self.ahead:
            return False
        self.ahead.add(seq)
        self._advance()
        return True

    def raise_floor(self, seq: int) -> None:
        """Treat everything up to ``seq`` as settled (the origin no longer has it)."""
        if seq > self.watermark:
            self.watermark = seq
            self.ahead = {s for s in self.ahead if s > seq}
            self._advance()

    def _advance(self) -> None:
        while self.watermark + 1 in self.ahead:
            self.watermark += 1
            self.ahead.discard(self.watermark)
        if not self.ahead:
            self.gap_since = None


Control = Callable[[dict[str, Any]], None]


class Relay:
    """Publishes this node's partials and merges the other nodes' into ``windows``.

    ``history``: whether to take peers' earlier partials (replayed from their rings) on
    first contact. True when each node has its own store (chDB), so the store seeded
    only this node's past; False with a shared store (ClickHouse), whose seed already
    holds every node's past — then a peer counts from the first live partial or
    announcement heard, and replays only fill gaps after that.

    Example:
        >>> relay = Relay("redis://localhost:6379/0", windows, node_id="a1")  # doctest: +SKIP
        >>> writer.listeners.append(relay.add_batch)  # doctest: +SKIP
        >>> await relay.start()  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        windows: LiveWindows,
        node_id: str,
        clock: Clock = system_clock,
        registry: CollectorRegistry | None = None,
        history: bool = True,
    ) -> None:
        self.url = url
        self.history = history
        self.windows = windows
        self.node_id = node_id
        self.clock = clock
        self.on_control: list[Control] = []
        self.pending = LiveWindows()
        self.seq = 0
        self.unsent: deque[tuple[int, str, bytes]] = deque()
        self._unsent_bytes = 0
        self.ring: deque[tuple[int, str, bytes, float]] = deque()
        self._ring_bytes = 0
        self.progress: dict[str, _Progress] = {}
        self.subscribed = asyncio.Event()
        self._client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._publish_down = False
        self._last_published = 0
        self._hello_due = False
        self._replays: set[asyncio.Task[None]] = set()
        r = registry or CollectorRegistry()
        self.m_published = Counter(
            "meterline_stream_relay_published_total", "Partials published to peers", registry=r
        )
        self.m_merged = Counter(
            "meterline_stream_relay_merged_total", "Peer partials merged", registry=r
        )
        self.m_replays = Counter(
            "meterline_stream_relay_replay_requests_total", "Replays asked of peers", registry=r
        )
        self.m_connected = Gauge(
            "meterline_stream_relay_connected", "1 while subscribed to Redis", registry=r
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect lazily and start the publish and subscribe loops."""
        # Retries re-open pooled connections that a Redis restart left dead.
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=5,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._publish_loop()), loop.create_task(self._listen())]

    async def stop(self) -> None:
        """Publish what is pending (briefly) and stop."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush(), timeout=1)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()

    # -- publishing -----------------------------------------------------------------------

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Remember rows (in ``ROW_COLUMNS`` order) for the next partial."""
        self.pending.add_rows(rows)

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """The ingest writer's listener: remember a batch of rows for the next partial."""
        self.pending.add_batch(batch)

    def _cut(self) -> None:
        pending, self.pending = self.pending, LiveWindows()
        for org_id, window in pending.orgs.items():
            self.seq += 1
            payload = encode_partial(self.node_id, self.seq, org_id, window)
            self.unsent.append((self.seq, ORG_PREFIX + org_id, payload))
            self._unsent_bytes += len(payload)
        while self._unsent_bytes > UNSENT_BYTES and self.unsent:
            _, _, dropped = self.unsent.popleft()
            self._unsent_bytes -= len(dropped)
            log.warning("live relay: Redis down too long, dropping the oldest partial")

    async def _flush(self) -> None:
        self._cut()
        assert self._client is not None
        while self.unsent:
            seq, channel, payload = self.unsent[0]
            await self._client.publish(channel, payload)
            self.unsent.popleft()
            self._unsent_bytes -= len(payload)
            self._remember(seq, channel, payload)
            self._last_published = seq
            self.m_published.inc()

    def _remember(self, seq: int, channel: str, payload: bytes) -> None:
        now = self.clock()
        self.ring.append((seq, channel, payload, now))
        self._ring_bytes += len(payload)
        while self.ring and (self._ring_bytes > RING_BYTES or self.ring[0][3] < now - KEPT_SECONDS):
            self._ring_bytes -= len(self.ring.popleft()[2])

    async def _publish_loop(self) -> None:
        last_head = 0.0
        while True:
            try:
                await self._flush()
                now = self.clock()
                if self._last_published and now - last_head >= HEAD_INTERVAL:
                    last_head = now
                    await self._client_publish_control(
                        {"k": "head", "o": self.node_id, "s": self._last_published}
                    )
                if self._publish_down:
                    log.info("live relay: publishing to Redis again")
                self._publish_down = False
            except (RedisError, OSError) as exc:
                if not self._publish_down:
                    log.warning("live relay: cannot publish (%s); partials are kept", exc)
                self._publish_down = True
            await asyncio.sleep(PUBLISH_INTERVAL)

    async def _client_publish_control(self, message: dict[str, Any]) -> None:
        assert self._client is not None
        await self._client.publish(CONTROL_CHANNEL, msgspec.msgpack.encode(message))

    async def publish_control(self, message: dict[str, Any]) -> bool:
        """Send a control message to every node (this one included); False if Redis is down."""
        try:
            await self._client_publish_control(message)
        except (RedisError, OSError) as exc:
            log.warning("live relay: control message not sent (%s)", exc)
            return False
        return True

    async def _replay(self, after: int) -> None:
        """Re-publish the ring after ``after``; first tell how far back it reaches."""
        # Only what fell out of the ring is declared lost; a higher floor would make
        # other listeners skip partials they never merged.
        floor = self.ring[0][0] - 1 if self.ring else self._last_published
        assert self._client is not None
        await self._client.publish(
            CONTROL_CHANNEL, msgspec.msgpack.encode({"k": "floor", "o": self.node_id, "s": floor})
        )
        for seq, channel, payload, _ in list(self.ring):
            if seq > after:
                # Marked, so a node that takes no history can tell it from live traffic.
                replayed = {**msgspec.msgpack.decode(payload), "r": 1}
                await self._client.publish(channel, msgspec.msgpack.encode(replayed))

    async def _replay_quietly(self, after: int) -> None:
        try:
            await self._replay(after)
        except (RedisError, OSError) as exc:
            log.warning("live relay: replay interrupted (%s); the peer will ask again", exc)

    # -- alerts ---------------------------------------------------------------------------

    async def record_alert(self, org_id: str, event: dict[str, Any], state: dict[str, Any]) -> None:
        """Append an alert event to the org's Redis Stream and store the alert's state, so
        a client that reconnects to another node gets the same ``alert_id`` and replay."""
        assert self._client is not None
        try:
            await self._client.xadd(
                ALERT_STREAM + org_id,
                {"e": msgspec.json.encode(event)},
                maxlen=ALERT_EVENTS,
                approximate=True,
            )
            await self._client.hset(ALERT_STATE + org_id, state["key"], msgspec.json.encode(state))
        except (RedisError, OSError) as exc:
            log.warning("live relay: alert not shared (%s); this node still has it", exc)

    async def alert_state(self, org_id: str, key: str) -> dict[str, Any] | None:
        """The shared state of one alert, or ``None`` (also when Redis is down)."""
        assert self._client is not None
        try:
            raw = await self._client.hget(ALERT_STATE + org_id, key)
        except (RedisError, OSError):
            return None
        return dict(msgspec.json.decode(raw)) if raw else None

    async def alert_events(self, org_id: str) -> list[dict[str, Any]] | None:
        """The org's recent alert events, oldest first; ``None`` when Redis is down."""
        assert self._client is not None
        try:
            entries = await self._client.xrange(ALERT_STREAM + org_id, count=ALERT_EVENTS)
        except (RedisError, OSError):
            return None
        out: list[dict[str, Any]] = []
        for _, fields in entries or ():
            if fields and b"e" in fields:
                out.append(dict(msgspec.json.decode(fields[b"e"])))
        return out

    # -- receiving ------------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = BACKOFF_MIN
        while True:
            assert self._client is not None
            pubsub = self._client.pubsub()
            try:
                await pubsub.psubscribe(ORG_PREFIX + "*")
                await pubsub.subscribe(CONTROL_CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        await self._on_message(message)
                        delay = BACKOFF_MIN
                    if self._hello_due:
                        # Said until it gets through: peers replay what we missed.
                        known = {o: p.watermark for o, p in self.progress.items()}
                        hello = {
                            "k": "hello",
                            "o": self.node_id,
                            "known": known,
                            "history": self.history,
                        }
                        self._hello_due = not await self.publish_control(hello)
                    await self._ask_for_gaps()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.subscribed.is_set():
                    log.warning("live relay: lost Redis (%s); reconnecting", exc)
                self.subscribed.clear()
                self.m_connected.set(0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            # Full jitter, so nodes do not reconnect in lockstep after a Redis restart.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(BACKOFF_MAX, delay * 2)

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("subscribe", "psubscribe"):
            if message.get("channel") == CONTROL_CHANNEL.encode():
                # Subscribed (again): say what we have, so peers replay what we missed.
                self.subscribed.set()
                self.m_connected.set(1)
                log.info("live relay: subscribed to Redis")
                self._hello_due = True
            return
        if kind not in ("message", "pmessage"):
            return
        try:
            body = msgspec.msgpack.decode(message["data"])
        except msgspec.DecodeError:
            log.warning("live relay: undecodable message ignored")
            return
        if not isinstance(body, dict):
            return
        if body.get("k") == "p":
            self._merge(body)
        else:
            self._control(body)

    def _merge(self, body: dict[str, Any]) -> None:
        origin = str(body["o"])
        if origin == self.node_id:
            return  # our own rows are already in the windows
        progress = self._known(origin, int(body["s"]) - 1, bool(body.get("r")))
        if progress is None:
            return
        if not progress.accept(int(body["s"])):
            return
        oldest = int(self.clock()) - KEPT_SECONDS
        org_id = str(body["g"])
        for second, key, cell in decode_cells(body["c"]):
            if second >= oldest:
                self.windows.merge(org_id, second, key, cell)
        self.m_merged.inc()
        if progress.ahead and progress.gap_since is None:
            progress.gap_since = self.clock()

    def _known(self, origin: str, before: int, replayed: bool) -> _Progress | None:
        """The progress of ``origin``; on first contact without history, start it at
        ``before`` (or ignore a replay of the past: the store seed already has it)."""
        progress = self.progress.get(origin)
        if progress is None:
            if self.history:
                progress = self.progress[origin] = _Progress()
            elif replayed:
                return None
            else:
                progress = self.progress[origin] = _Progress(watermark=max(0, before))
        return progress

    async def _ask_for_gaps(self) -> None:
        now = self.clock()
        for origin, progress in self.progress.items():
            if progress.gap_since is None or now - progress.gap_since < GAP_PATIENCE:
                continue
            if now - progress.asked_at < 2 * GAP_PATIENCE:
                continue
            progress.asked_at = now
            self.m_replays.inc()
            await self.publish_control(
                {"k": "replay", "o": origin, "after": progress.watermark, "by": self.node_id}
            )

    def _control(self, body: dict[str, Any]) -> None:
        kind = body.get("k")
        after: int | None = None
        if kind == "hello" and body.get("o") != self.node_id:
            known = body.get("known") or {}
            if self.node_id in known or body.get("history", True):
                after = int(known.get(self.node_id, 0))
        elif kind == "replay" and body.get("o") == self.node_id:
            after = int(body.get("after", 0))
        if after is not None:
            # In its own task: the listener keeps reading while the ring is re-published.
            task = asyncio.get_running_loop().create_task(self._replay_quietly(after))
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)
        elif kind == "floor" and body.get("o") != self.node_id:
            floor = self._known(str(body["o"]), int(body["s"]), replayed=True)
            if floor is not None:
                floor.raise_floor(int(body["s"]))
        elif kind == "head" and body.get("o") != self.node_id:
            progress = self._known(str(body["o"]), int(body["s"]), replayed=False)
            assert progress is not None
            if int(body["s"]) > progress.watermark and progress.gap_since is None:
                progress.gap_since = self.clock()
        for listener in self.on_control:
            try:
                listener(body)
            except Exception:
                log.exception("live relay control listener failed")
