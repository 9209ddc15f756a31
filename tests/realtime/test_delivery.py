"""Delivery is spread in time: shared streams take distinct 50 ms phases (the least loaded
by frames per second), and a delivery writes each holder's socket once, on its own."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from meterline.auth import Principal
from meterline.clock import FrozenClock
from meterline.realtime import Connection, LiveWindows, parse_subscribe
from meterline.realtime.hub import PHASES, TICK, StreamHub
from tests.realtime.wsclient import run_async

PRINCIPAL = Principal("org", "enterprise", ("analytics:read",), "client", "client")


class RecordingSocket:
    """A direct socket that keeps every write (bytes and when) instead of sending it."""

    def __init__(self) -> None:
        self.writes: list[tuple[float, bytes]] = []

    def writable(self) -> bool:
        return True

    async def wait_writable(self) -> None:
        return None

    def closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.writes.append((time.time(), data))


def _texts(data: bytes) -> list[dict[str, Any]]:
    """The JSON text frames in server-to-client WebSocket bytes (unmasked, unfragmented)."""
    frames = []
    while data:
        length, start = data[1] & 0x7F, 2
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(data[2:10], "big"), 10
        frames.append(json.loads(data[start : start + length]))
        data = data[start + length :]
    return frames


def _spec(sub_id: str, window: str) -> Any:
    return parse_subscribe(
        {
            "action": "subscribe",
            "subscription_id": sub_id,
            "metrics": "all",
            "filters": {"time_window": window},
            "delivery_frequency": "1s",
        }
    )


async def _noop_send(frame: str) -> None:
    return None


async def _noop_close(code: int, reason: str) -> None:
    return None


def _phase(due: float) -> int:
    return round(due / TICK) % PHASES


def test_streams_subscribed_together_are_delivered_in_distinct_phases_one_frame_per_write() -> None:
    async def scenario() -> tuple[list[int], list[RecordingSocket]]:
        clock = FrozenClock(1_800_000_000.0)
        # Live streams compute from memory: the store's query service is never asked.
        hub = StreamHub(LiveWindows(), None, clock=clock)  # type: ignore[arg-type]
        sockets = [RecordingSocket() for _ in range(3)]
        for n, sock in enumerate(sockets):
            conn = Connection(
                f"c{n}", PRINCIPAL, clock() + 3600, _noop_send, _noop_close, direct=sock
            )
            hub.register(conn)
            for i in range(10):
                await hub.subscribe(conn, _spec(f"s{i}", f"{i + 1}m"))
        phases = [_phase(s.next_due) for s in hub.streams.values()]
        await asyncio.sleep(0.05)  # connected, subscribed and the snapshots go out first
        for sock in sockets:
            sock.writes.clear()
        for _ in range(3 * PHASES):  # three seconds of ticks, on time
            clock.advance(TICK)
            await hub.tick()
        return phases, sockets

    phases, sockets = run_async(scenario())
    assert len(phases) == 10 and len(set(phases)) == 10
    for sock in sockets:
        frames = [_texts(data) for _, data in sock.writes]
        # Every subscription was delivered at least twice, and never two in one write.
        updates = [f for batch in frames for f in batch if f["type"] == "metric_update"]
        counts = {f"s{i}": 0 for i in range(10)}
        for update in updates:
            counts[update["subscription_id"]] += 1
        assert min(counts.values()) >= 2, counts
        assert max(len(batch) for batch in frames) == 1


def test_a_new_stream_avoids_the_phase_that_carries_the_most_frames() -> None:
    async def scenario() -> tuple[int, int, set[int]]:
        hub = StreamHub(LiveWindows(), None)  # type: ignore[arg-type]
        crowd = []
        for n in range(30):
            conn = Connection(f"c{n}", PRINCIPAL, time.time() + 3600, _noop_send, _noop_close)
            hub.register(conn)
            crowd.append(conn)
        # One stream with 30 holders, then 19 with one holder: every phase holds one.
        for conn in crowd:
            await hub.subscribe(conn, _spec("popular", "1m"))
        for i in range(19):
            await hub.subscribe(crowd[0], _spec(f"alone{i}", f"{i + 2}m"))
        popular = next(s for s in hub.streams.values() if len(s.holders) == 30)
        used = {_phase(s.next_due) for s in hub.streams.values()}
        await hub.subscribe(crowd[1], _spec("late", "30m"))
        late = next(s for s in hub.streams.values() if s.spec.window_seconds == 1800)
        hub.unregister(crowd[0])
        return _phase(popular.next_due), _phase(late.next_due), used

    popular, late, used = run_async(scenario())
    assert len(used) == PHASES
    assert late != popular


def test_streams_that_missed_a_whole_period_are_spread_over_the_phases_again() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        hub = StreamHub(LiveWindows(), None)  # type: ignore[arg-type]
        sock = RecordingSocket()
        conn = Connection("c", PRINCIPAL, time.time() + 3600, _noop_send, _noop_close, direct=sock)
        hub.register(conn)
        for i in range(10):
            await hub.subscribe(conn, _spec(f"s{i}", f"{i + 1}m"))
        await asyncio.sleep(0.1)
        # The loop was busy for seconds (a crowd connecting): every stream is overdue.
        stalled = time.time() - 3
        for stream in hub.streams.values():
            stream.next_due = stalled
        sock.writes.clear()
        await hub.tick()
        delivered = [len(_texts(data)) for _, data in sock.writes]
        phases = [_phase(s.next_due) for s in hub.streams.values()]
        hub.unregister(conn)
        return phases, delivered

    phases, delivered = run_async(scenario())
    # All of them now, late as they are, in one write: the loop is behind, so the
    # socket gets one system call for the ten frames instead of ten.
    assert delivered == [10]
    assert len(set(phases)) == 10  # and from the next second on, apart again
