"""Outbox behaviour: conflation, never-dropped alerts, eviction of a stalled reader."""

from __future__ import annotations

import asyncio
import json

import pytest

from meterline.auth import Principal
from meterline.clock import system_clock
from meterline.realtime import (
    CLOSE_SLOW_CONSUMER,
    Connection,
    ConnectionState,
    IllegalTransitionError,
)
from tests.realtime.wsclient import run_async

PRINCIPAL = Principal("org", "basic", ("analytics:read",), "client", "client")


class GatedSocket:
    """A socket whose sends wait until the test opens the gate (a reader that stalls)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[dict[str, object]] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, frame: str) -> None:
        await self.gate.wait()
        self.sent.append(json.loads(frame))

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def _connection(sock: GatedSocket, **kwargs: float) -> Connection:
    conn = Connection("c1", PRINCIPAL, 0.0, sock.send, sock.close, **kwargs)  # type: ignore[arg-type]
    conn.transition(ConnectionState.SUBSCRIBED)
    conn.start_writer(system_clock)
    return conn


def _update(seq: int) -> str:
    return json.dumps({"type": "metric_update", "subscription_id": "s", "seq": seq})


def test_latest_update_replaces_unsent_one_and_alerts_all_arrive() -> None:
    async def scenario() -> GatedSocket:
        sock = GatedSocket()
        conn = _connection(sock)
        await asyncio.sleep(0)
        for seq in range(1, 101):
            conn.offer_update("s", _update(seq))
            if seq % 25 == 0:
                conn.offer({"type": "alert", "n": seq})
        sock.gate.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
        conn.stop()
        return sock

    sock = run_async(scenario())
    updates = [m["seq"] for m in sock.sent if m["type"] == "metric_update"]
    alerts = [m["n"] for m in sock.sent if m["type"] == "alert"]
    assert alerts == [25, 50, 75, 100]
    # The writer was blocked on the first frame; everything after it conflated to the last.
    assert updates[-1] == 100
    assert len(updates) <= 2
    assert sock.closed is None


def test_stalled_reader_is_evicted_with_4008() -> None:
    async def scenario() -> tuple[GatedSocket, Connection]:
        sock = GatedSocket()
        conn = _connection(sock, write_deadline=0.2)
        conn.offer({"type": "connected"})
        for _ in range(50):
            await asyncio.sleep(0.02)
        return sock, conn

    sock, conn = run_async(scenario())
    assert sock.closed is not None and sock.closed[0] == CLOSE_SLOW_CONSUMER
    assert conn.state is ConnectionState.DRAINING


def test_fifo_overflow_evicts_instead_of_growing() -> None:
    async def scenario() -> tuple[GatedSocket, Connection]:
        sock = GatedSocket()
        conn = _connection(sock, fifo_frames=8)
        for n in range(20):
            conn.offer({"type": "alert", "n": n})
        await asyncio.sleep(0.05)
        return sock, conn

    sock, conn = run_async(scenario())
    assert sock.closed is not None and sock.closed[0] == CLOSE_SLOW_CONSUMER
    assert conn.depth == 0


def test_illegal_transition_is_refused() -> None:
    sock = GatedSocket()
    conn = Connection("c2", PRINCIPAL, 0.0, sock.send, sock.close)
    conn.transition(ConnectionState.CLOSED)
    with pytest.raises(IllegalTransitionError):
        conn.transition(ConnectionState.SUBSCRIBED)
