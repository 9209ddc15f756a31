"""One stream connection: its state machine and its bounded, conflating outbox.

The publisher only ever calls :meth:`Connection.offer_update` / :meth:`Connection.offer`,
which never wait. A frame is an :class:`Outgoing`: its text is built once per update and
its wire bytes once for every socket that sends the same frame. With a
:class:`DirectSocket` (the server lets us write frames to the transport) everything a
connection has queued by the end of the current loop step goes out in one write; else a
writer task sends frame by frame through the ASGI ``send``.

Per subscription there is one slot: a newer ``metric_update`` replaces an unsent one
(conflation). Alerts and control frames go through a small FIFO that is never conflated;
when it overflows, or a send stays pending past the write deadline, the connection is
evicted with close code 4008 so one stalled reader cannot hold the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, Protocol

from websockets.frames import Frame, Opcode

from meterline.auth import Principal

log = logging.getLogger(__name__)

FIFO_FRAMES = 64
OUTBOX_BYTES = 1024 * 1024
WRITE_DEADLINE = 10.0

CLOSE_SLOW_CONSUMER = 4008
CLOSE_TOKEN_EXPIRED = 4001
CLOSE_BAD_REQUEST = 4400
CLOSE_INVALID_TOKEN = 4401
CLOSE_SCOPE = 4403
CLOSE_LIMIT = 4429
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009


class ConnectionState(StrEnum):
    """CONNECTING → SUBSCRIBED → DRAINING → CLOSED; nothing goes back."""

    CONNECTING = "connecting"
    SUBSCRIBED = "subscribed"
    DRAINING = "draining"
    CLOSED = "closed"


_ALLOWED = {
    ConnectionState.CONNECTING: {ConnectionState.SUBSCRIBED, ConnectionState.CLOSED},
    ConnectionState.SUBSCRIBED: {ConnectionState.DRAINING, ConnectionState.CLOSED},
    ConnectionState.DRAINING: {ConnectionState.CLOSED},
    ConnectionState.CLOSED: set(),
}


class IllegalTransitionError(RuntimeError):
    """A connection was asked to move to a state it cannot reach from where it is."""


Send = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


def encode(message: dict[str, Any]) -> str:
    """One JSON text frame."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


class Outgoing:
    """One text frame to send: its JSON text, and its WebSocket wire bytes (an unmasked,
    uncompressed server frame), built on first use and shared by every socket that
    sends this same object."""

    __slots__ = ("_wire", "size", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.size = len(text)
        self._wire: bytes | None = None

    def wire(self) -> bytes:
        """The frame as it goes on the socket."""
        if self._wire is None:
            self._wire = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False)
        return self._wire


class DirectSocket(Protocol):
    """A socket we may write whole frames to (no extension negotiated), with the
    server's flow control: write only while :meth:`writable`."""

    def writable(self) -> bool:
        """False while the transport's buffer is over its high-water mark."""
        ...

    async def wait_writable(self) -> None:
        """Return once the buffer has drained (or the socket is gone)."""
        ...

    def closing(self) -> bool:
        """True once the socket is closing or closed: write nothing more."""
        ...

    def write(self, data: bytes) -> None:
        """Queue bytes on the transport; never blocks."""
        ...


class Connection:
    """A client socket as the hub sees it: identity, subscriptions, outbox and writer."""

    def __init__(
        self,
        connection_id: str,
        principal: Principal,
        token_expires_at: float,
        send: Send,
        close: Close,
        *,
        write_deadline: float = WRITE_DEADLINE,
        fifo_frames: int = FIFO_FRAMES,
        direct: DirectSocket | None = None,
    ) -> None:
        self.connection_id = connection_id
        self.principal = principal
        self.token_expires_at = token_expires_at
        self.expiry_warned = False
        self.state = ConnectionState.CONNECTING
        self.subscriptions: dict[str, Any] = {}
        self.seq: dict[str, int] = {}
        self.last_sent = 0.0
        self.last_received = 0.0
        self.pings_expected = False
        self.drops = 0
        self._send = send
        self._close = close
        self.direct = direct
        self._slots: dict[str, Outgoing] = {}
        self._fifo: deque[Outgoing] = deque()
        self._flush_due = False
        self._clock: Callable[[], float] | None = None
        self._bytes = 0
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._sending_since: float | None = None
        self.write_deadline = write_deadline
        self.fifo_frames = fifo_frames
        self.close_code: int | None = None
        self.on_evict: Callable[[Connection], None] | None = None

    # -- state ----------------------------------------------------------------------------

    def transition(self, target: ConnectionState) -> None:
        """Move to ``target`` or raise :class:`IllegalTransitionError`."""
        if target not in _ALLOWED[self.state]:
            raise IllegalTransitionError(f"{self.state} → {target} is not allowed")
        self.state = target

    @property
    def open(self) -> bool:
        """True while frames may still be queued."""
        return self.state is ConnectionState.SUBSCRIBED

    # -- outbox ---------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Frames waiting to be sent."""
        return len(self._fifo) + len(self._slots)

    def next_seq(self, subscription_id: str) -> int:
        """The next sequence number of a subscription's updates."""
        value = self.seq.get(subscription_id, 0) + 1
        self.seq[subscription_id] = value
        return value

    def offer_update(self, subscription_id: str, frame: Outgoing | str) -> None:
        """Queue a ``metric_update``, replacing any unsent one of the same subscription;
        it goes out at the end of the current loop step."""
        if self.queue_update(subscription_id, frame):
            self._ready()

    def queue_update(self, subscription_id: str, frame: Outgoing | str) -> bool:
        """Like :meth:`offer_update` but leaves the sending to the caller, who calls
        :meth:`push` once it has queued everything for this connection (the fan-out
        does, so a delivery's frames are written at once, without a callback per
        socket). Returns False when the connection takes no more frames."""
        if self.state is not ConnectionState.SUBSCRIBED:
            return False
        if isinstance(frame, str):
            frame = Outgoing(frame)
        slots = self._slots
        old = slots.pop(subscription_id, None)
        if old is not None:
            self._bytes -= old.size
            self.drops += 1
        slots[subscription_id] = frame
        self._bytes += frame.size
        if self._bytes > OUTBOX_BYTES:
            self.evict("outbox overflow")
            return False
        return True

    def push(self) -> None:
        """Send what is queued now: one write to a direct socket (when its buffer has
        room; else the writer waits for it), or wake the ASGI writer."""
        if self.direct is None:
            self._wake.set()
        elif self._clock is not None:
            self._flush()

    def offer(self, message: dict[str, Any]) -> None:
        """Queue an alert or control frame in order; never conflated."""
        if self.state in (ConnectionState.CLOSED, ConnectionState.DRAINING):
            return
        frame = Outgoing(encode(message))
        self._fifo.append(frame)
        self._bytes += frame.size
        self._ready()
        self._check_bounds()

    def _ready(self) -> None:
        if self.direct is None:
            self._wake.set()
        elif not self._flush_due and self._clock is not None:
            # One write per connection per loop step: a tick's updates go out together.
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Write everything queued to a direct socket at once, unless its buffer is full
        (then the writer task waits for it to drain)."""
        self._flush_due = False
        direct = self.direct
        if (
            direct is None
            or self.state is ConnectionState.CLOSED
            or self._sending_since is not None
        ):
            return
        assert self._clock is not None
        if direct.closing():
            return
        if not direct.writable():
            self._sending_since = self._clock()
            self._wake.set()
            return
        fifo, slots = self._fifo, self._slots
        if fifo:
            chunks = [f.wire() for f in fifo]
            chunks.extend(f.wire() for f in slots.values())
            fifo.clear()
            data = b"".join(chunks)
        elif len(slots) == 1:
            data = next(iter(slots.values())).wire()  # the usual case: one update
        elif slots:
            data = b"".join([f.wire() for f in slots.values()])
        else:
            return
        slots.clear()
        self._bytes = 0
        direct.write(data)
        self.last_sent = self._clock()

    def _check_bounds(self) -> None:
        if len(self._fifo) > self.fifo_frames or self._bytes > OUTBOX_BYTES:
            self.evict("outbox overflow")

    def stalled(self, now: float) -> bool:
        """True when a send has been pending longer than the write deadline."""
        return self._sending_since is not None and now - self._sending_since > self.write_deadline

    def evict(self, reason: str) -> None:
        """Drop this slow consumer: stop queueing, cancel the writer, close with 4008."""
        if self.state in (ConnectionState.CLOSED, ConnectionState.DRAINING):
            return
        log.warning("evicting slow stream consumer %s: %s", self.connection_id, reason)
        self.state = ConnectionState.DRAINING
        self._slots.clear()
        self._fifo.clear()
        if self.on_evict is not None:
            self.on_evict(self)
        self._cancel_tasks()
        self.close_code = CLOSE_SLOW_CONSUMER
        asyncio.get_running_loop().create_task(self._close_quietly(CLOSE_SLOW_CONSUMER, reason))

    async def _close_quietly(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._close(code, reason[:120]), timeout=2)

    def start_writer(self, clock: Callable[[], float]) -> None:
        """Start the task that drains the outbox onto the socket, and its watchdog."""
        loop = asyncio.get_running_loop()
        self._clock = clock
        drain = self._drain(clock) if self.direct is None else self._drain_direct()
        self._writer = loop.create_task(drain)
        if self._fifo or self._slots:
            self._ready()
        self._watchdog = loop.call_later(self.write_deadline / 2, self._watch, clock)

    def _watch(self, clock: Callable[[], float]) -> None:
        """Evict when a send has been pending past the write deadline; re-arm while open."""
        self._watchdog = None
        if self.state in (ConnectionState.CLOSED, ConnectionState.DRAINING):
            return
        if self.stalled(clock()):
            self.evict("send pending past the write deadline")
            return
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self.write_deadline / 2, self._watch, clock)

    async def _drain(self, clock: Callable[[], float]) -> None:
        # No per-send timeout here (asyncio.wait_for costs a task per frame before
        # Python 3.12): the watchdog evicts a connection whose send stays pending past
        # the write deadline (:meth:`stalled`), which cancels this task.
        send = self._send
        fifo, slots = self._fifo, self._slots
        while True:
            await self._wake.wait()
            self._wake.clear()
            while fifo or slots:
                frame = fifo.popleft() if fifo else slots.pop(next(iter(slots)))
                self._bytes -= frame.size
                self._sending_since = clock()
                try:
                    await send(frame.text)
                except Exception:
                    self._sending_since = None
                    return
            self._sending_since = None
            self.last_sent = clock()

    async def _drain_direct(self) -> None:
        # Only runs when a flush found the transport's buffer full: wait for it to
        # drain (the watchdog evicts past the write deadline), then flush again.
        assert self.direct is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.direct.wait_writable()
            self._sending_since = None
            self._flush()

    async def flush_and_close(self, code: int, reason: str, timeout: float = 2.0) -> None:
        """Send what is queued (briefly), then close with ``code``."""
        if self.state is ConnectionState.CLOSED:
            return
        if self.state is ConnectionState.SUBSCRIBED:
            self.transition(ConnectionState.DRAINING)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._fifo or self._slots) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self.close_code = code
        await self._close_quietly(code, reason)

    def stop(self) -> None:
        """Mark closed and cancel the writer (the socket is gone)."""
        self.state = ConnectionState.CLOSED
        self._cancel_tasks()

    def _cancel_tasks(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
