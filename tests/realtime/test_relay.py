"""The Redis relay between nodes' live windows, against a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from meterline.events import ROW_COLUMNS
from meterline.realtime import LiveWindows
from meterline.realtime.relay import Relay
from tests.ratelimit.redis_server import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def _rows(n: int, org: str = "org_r") -> list[list[Any]]:
    now_ms = int(time.time() * 1000)
    rows = []
    for i in range(n):
        row: list[Any] = [None] * len(ROW_COLUMNS)
        values = {
            "org_id": org,
            "type": "request",
            "timestamp": now_ms,
            "route": "/r",
            "method": "GET",
            "status": (200, 500)[i % 2],
            "latency_ms": 10.0 + i,
            "consumer_id": f"c{i % 3}",
            "request_size": 10,
            "response_size": 20,
        }
        for name, value in values.items():
            row[ROW_COLUMNS.index(name)] = value
        rows.append(row)
    return rows


def _requests(windows: LiveWindows, org: str = "org_r") -> int:
    now = int(time.time())
    return windows.org(org).totals(now - 300, now + 1, ()).req_count


async def _until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def test_peers_merge_each_others_partials_once_and_late_nodes_choose_history(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> dict[str, int]:
        own = LiveWindows()
        b = Relay(redis_server.url, own, "node-b")
        await b.start()
        await _until(b.subscribed.is_set)
        b.add_rows(_rows(10))
        await _until(lambda: len(b.ring) >= 1)
        # Late nodes: one with its own store takes B's past; one on a shared store must not.
        with_history, shared_store = LiveWindows(), LiveWindows()
        a = Relay(redis_server.url, with_history, "node-a", history=True)
        c = Relay(redis_server.url, shared_store, "node-c", history=False)
        await a.start()
        await c.start()
        await _until(lambda: _requests(with_history) == 10)
        await asyncio.sleep(2.5)  # B announces its head every second meanwhile
        before = {"a": _requests(with_history), "c": _requests(shared_store)}
        b.add_rows(_rows(6))
        await _until(lambda: _requests(with_history) == 16 and _requests(shared_store) == 6)
        await asyncio.sleep(1.5)
        after = {"a": _requests(with_history), "c": _requests(shared_store), "b": _requests(own)}
        for relay in (a, b, c):
            await relay.stop()
        return {f"{k}_before": v for k, v in before.items()} | after

    seen = asyncio.run(scenario())
    assert seen["a_before"] == 10 and seen["c_before"] == 0
    assert seen["a"] == 16 and seen["c"] == 6
    # A node never merges its own partials (the writer already put its rows in place).
    assert seen["b"] == 0


def test_partials_wait_while_redis_is_down_and_arrive_after(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[int, int]:
        mine = LiveWindows()
        b = Relay(redis_server.url, LiveWindows(), "node-b")
        a = Relay(redis_server.url, mine, "node-a")
        await b.start()
        await a.start()
        await _until(lambda: a.subscribed.is_set() and b.subscribed.is_set())
        b.add_rows(_rows(4))
        await _until(lambda: _requests(mine) == 4)
        redis_server.stop()
        b.add_rows(_rows(5))
        await asyncio.sleep(1.0)
        during = _requests(mine)
        redis_server.start()
        await _until(lambda: _requests(mine) == 9, timeout=30)
        await a.stop()
        await b.stop()
        return during, _requests(mine)

    during, after = asyncio.run(scenario())
    assert during == 4
    assert after == 9
