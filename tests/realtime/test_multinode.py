"""Two server processes sharing a real redis-server: a subscriber on one node sees the
ingest of the other, numbers equal ``POST /v2/query``, and survive a Redis restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.helpers import ServerProcess, Tenant, make_tenant
from tests.ratelimit.redis_server import RedisServer
from tests.realtime.traffic import VOCAB, ingest, traffic, ws_url
from tests.realtime.wsclient import connect, recv_json, recv_until, run_async, send

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RedisServer, ServerProcess, ServerProcess, Tenant]]:
    root = tmp_path_factory.mktemp("multinode")
    tenant = make_tenant(root, "twonodes", "professional")
    redis = RedisServer()
    redis.start()
    env = {
        # Shared credentials (one metadata database); each node has its own store.
        "METERLINE_METADATA_URL": f"sqlite:///{(root / 'metadata.db').resolve()}",
        "METERLINE_STREAM_REDIS_URL": redis.url,
        # Nodes compare their stream counts every second (rebalancing test).
        "METERLINE_STREAM_LOAD_INTERVAL": "1",
    }
    a = ServerProcess(root / "a", env=env, log_level="info")
    b = ServerProcess(root / "b", env=env, log_level="info")
    a.start()
    b.start()
    try:
        yield redis, a, b, tenant
    finally:
        a.stop()
        b.stop()
        redis.stop()


def _query(server: ServerProcess, token: str, window: dict[str, str]) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/v2/query",
        json={"metrics": sorted(set(VOCAB.values())), "start": window["from"], "end": window["to"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["data"][0])


def _values(update: dict[str, Any]) -> dict[str, Any]:
    return {m["name"]: m["value"] for m in update["metrics"]}


async def _subscribe(server: ServerProcess, token: str) -> ClientConnection:
    ws = await connect(ws_url(server, f"?token={token}"))
    assert (await recv_json(ws))["type"] == "connected"
    await send(
        ws,
        {
            "action": "subscribe",
            "subscription_id": "all",
            "metrics": list(VOCAB),
            "filters": {"time_window": "5m"},
            "delivery_frequency": "real_time",
        },
    )
    assert (await recv_json(ws))["type"] == "subscribed"
    return ws


async def _until_requests(ws: ClientConnection, count: int) -> dict[str, Any]:
    return await recv_until(
        ws,
        lambda m: m["type"] == "metric_update" and _values(m)["requests"] == count,
        timeout=30,
    )


async def _settled(ws: ClientConnection, seconds: float = 1.5) -> dict[str, Any] | None:
    """The last update within ``seconds`` (a ping marks the end), or None."""
    await asyncio.sleep(seconds)
    await send(ws, {"action": "ping", "id": "end"})
    last = None
    while True:
        message = await recv_json(ws)
        if message["type"] == "pong":
            return last
        if message["type"] == "metric_update":
            last = message


def _in_store(
    server: ServerProcess, token: str, window: dict[str, str], requests: int
) -> dict[str, Any]:
    """The query answer for ``window`` once the node's store holds ``requests`` rows."""
    deadline = time.monotonic() + 20
    while True:
        row = _query(server, token, window)
        if row["requests"] == requests or time.monotonic() > deadline:
            return row
        time.sleep(0.1)


def test_a_subscriber_on_one_node_sees_the_other_and_survives_a_redis_restart(
    cluster: tuple[RedisServer, ServerProcess, ServerProcess, Tenant],
) -> None:
    redis, a, b, tenant = cluster
    token = a.token(tenant.reader_id, tenant.reader_secret)
    observed: dict[str, Any] = {}

    async def scenario() -> None:
        on_a = await _subscribe(a, token)
        on_b = await _subscribe(b, token)
        ingest(b, tenant, traffic(300, "/multi"))
        observed["a_first"] = await _until_requests(on_a, 300)
        await _until_requests(on_b, 300)
        # Compared now: later traffic lands in the same five minutes.
        window = observed["a_first"]["window"]
        observed["a_first_store"] = await asyncio.to_thread(_in_store, b, token, window, 300)
        # B hears its own partials back from Redis: they must not count twice.
        observed["b_settled"] = await _settled(on_b)
        observed["a_settled"] = await _settled(on_a)

        redis.stop()
        ingest(b, tenant, traffic(200, "/multi"))  # published once Redis is back
        await _until_requests(on_b, 500)
        redis.start()
        observed["a_after_restart"] = await _until_requests(on_a, 500)
        window = observed["a_after_restart"]["window"]
        observed["a_after_restart_store"] = await asyncio.to_thread(
            _in_store, b, token, window, 500
        )

        ingest(a, tenant, traffic(100, "/multi"))
        observed["a_both"] = await _until_requests(on_a, 600)
        observed["b_both"] = await _until_requests(on_b, 600)
        await on_a.close()
        await on_b.close()

    run_async(scenario())
    for name in ("b_settled", "a_settled"):
        settled = observed[name]
        assert settled is None or _values(settled)["requests"] == 300
    # Every value on A (only B's traffic so far) equals what B's store answers.
    for name in ("a_first", "a_after_restart"):
        update, row = observed[name], observed[f"{name}_store"]
        assert {n: row[v] for n, v in VOCAB.items()} == _values(update)
    # With traffic on both nodes, both show the sum of the two stores.
    a_both, b_both = observed["a_both"], observed["b_both"]
    assert _values(a_both)["requests"] == _values(b_both)["requests"] == 600
    row_a = _in_store(a, token, a_both["window"], 100)
    row_b = _in_store(b, token, a_both["window"], 500)
    for key in ("requests", "errors", "bandwidth", "active_consumers"):
        if key == "active_consumers":
            continue  # distinct counts do not add up across stores
        assert _values(a_both)[key] == row_a[VOCAB[key]] + row_b[VOCAB[key]]


def test_a_node_that_starts_late_gets_its_peers_recent_traffic(
    cluster: tuple[RedisServer, ServerProcess, ServerProcess, Tenant], tmp_path: Path
) -> None:
    _, a, _, tenant = cluster
    token = a.token(tenant.reader_id, tenant.reader_secret)
    ingest(a, tenant, traffic(50, "/late"))
    late = ServerProcess(tmp_path / "late", env=a.env, log_level="info")
    late.start()  # its own store has none of this traffic: A replays it over Redis
    try:

        async def scenario() -> dict[str, Any]:
            ws = await connect(ws_url(late, f"?token={token}"))
            await recv_json(ws)
            await send(
                ws,
                {
                    "action": "subscribe",
                    "subscription_id": "late",
                    "metrics": ["requests"],
                    "filters": {
                        "time_window": "5m",
                        "endpoints": ["/late/a", "/late/b", "/late/c"],
                    },
                },
            )
            found = await _until_requests(ws, 50)
            await ws.close()
            return found

        assert _values(run_async(scenario()))["requests"] == 50
    finally:
        late.stop()


def test_an_alert_keeps_its_id_when_the_client_moves_to_another_node(
    cluster: tuple[RedisServer, ServerProcess, ServerProcess, Tenant],
) -> None:
    _, a, b, tenant = cluster
    token = a.token(tenant.reader_id, tenant.reader_secret)
    route = f"/alarm/{uuid.uuid4().hex[:8]}"
    subscribe = {
        "action": "subscribe",
        "subscription_id": "pager",
        "metrics": ["requests"],
        "filters": {"time_window": "5m", "endpoints": [route]},
        "delivery_frequency": "1s",
        "alert_thresholds": {"requests": {"condition": "above", "value": 2, "duration": "0s"}},
    }

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        ws = await connect(ws_url(a, f"?token={token}"))
        epoch = (await recv_json(ws))["epoch"]
        await send(ws, subscribe)
        ingest(a, tenant, [{**e, "route": route} for e in traffic(5)])
        fired = await recv_until(ws, lambda m: m["type"] == "alert")
        await ws.close()
        # Same subscription on the other node: the alert it announces is the same one.
        ws = await connect(ws_url(b, f"?token={token}"))
        await recv_json(ws)
        await send(ws, subscribe)
        moved = await recv_until(ws, lambda m: m["type"] == "alert")
        await ws.close()
        # Resuming there from before the alert replays it from the shared log.
        ws = await connect(ws_url(b, f"?token={token}"))
        await recv_json(ws)
        await send(ws, {**subscribe, "resume": {"seq": 1, "epoch": epoch, "last_alert_id": "0"}})
        frames = [await recv_json(ws)]
        while frames[-1]["type"] != "metric_update":
            frames.append(await recv_json(ws))
        await ws.close()
        return fired, moved, frames

    fired, moved, frames = run_async(scenario())
    assert fired["state"] == moved["state"] == "firing"
    assert moved["alert_id"] == fired["alert_id"]
    replayed = [f for f in frames if f["type"] == "alert"]
    assert [(f["alert_id"], f["event_id"], f["replayed"]) for f in replayed] == [
        (fired["alert_id"], fired["event_id"], True)
    ]
    assert [f["reason"] for f in frames if f["type"] == "resync"] == ["node_restart"]
    assert frames[-1]["recovered"] is False


def test_a_node_holding_far_more_streams_than_its_peer_sheds_some_with_4012(
    cluster: tuple[RedisServer, ServerProcess, ServerProcess, Tenant],
) -> None:
    _, a, b, tenant = cluster
    token = a.token(tenant.reader_id, tenant.reader_secret)

    async def scenario() -> tuple[int, list[tuple[int, dict[str, Any]]]]:
        # 30 streams on node a, none on b: the mean is 15, a holds over 1.25 x 15 + 5.
        sockets = [await connect(ws_url(a, f"?token={token}")) for _ in range(30)]
        for ws in sockets:
            assert (await recv_json(ws))["type"] == "connected"

        async def outcome(ws: ClientConnection) -> tuple[int, dict[str, Any]]:
            last: dict[str, Any] = {}
            try:
                while True:
                    last = await recv_json(ws, timeout=60)
            except websockets.ConnectionClosed as closed:
                return (closed.rcvd.code if closed.rcvd else 1006), last
            except TimeoutError:
                return 0, last

        watchers = [asyncio.ensure_future(outcome(ws)) for ws in sockets]
        done, _ = await asyncio.wait(watchers, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(6)  # the rest of this round, spread over a few seconds
        shed = [w.result() for w in watchers if w.done()]
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*watchers, return_exceptions=True)
        return len(done), shed

    first_round, shed = run_async(scenario())
    assert first_round >= 1
    # A tenth per round: not the whole excess at once.
    assert 1 <= len(shed) <= 12
    for code, frame in shed:
        assert code == 4012
        assert frame["type"] == "error" and frame["error"]["code"] == "NODE_REBALANCING"
