"""Heartbeats, clients that stop answering, and revoked clients — with a 1 s heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from meterline.auth import AuthService
from meterline.metadb import engine_from_url
from tests.helpers import ServerProcess, Tenant, make_tenant
from tests.realtime.traffic import ingest, traffic, ws_url
from tests.realtime.wsclient import closed_with, connect, recv_json, recv_until, run_async, send

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def live_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("liveness")


@pytest.fixture(scope="module")
def tenant(live_dir: Path) -> Tenant:
    return make_tenant(live_dir, "beats", "professional")


@pytest.fixture(scope="module")
def server(live_dir: Path, tenant: Tenant) -> Iterator[ServerProcess]:
    proc = ServerProcess(live_dir, env={"METERLINE_STREAM_HEARTBEAT": "1"})
    proc.start()
    yield proc
    proc.stop()


def test_heartbeats_on_a_quiet_stream_over_websocket_and_sse(
    server: ServerProcess, tenant: Tenant
) -> None:
    token = server.token(tenant.reader_id, tenant.reader_secret)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = await connect(ws_url(server, f"?token={token}"))
        connected = await recv_json(ws)
        beat = await recv_until(ws, lambda m: m["type"] == "heartbeat", timeout=10)
        await ws.close()
        return connected, beat

    connected, beat = run_async(scenario())
    assert connected["heartbeat_interval"] == 1.0 and beat["timestamp"]
    with httpx.stream(
        "GET", f"{server.url}/v2/stream/sse", params={"token": token}, timeout=30
    ) as response:
        kinds = []
        for line in response.iter_lines():
            if line.startswith("event: "):
                kinds.append(line[7:])
                if kinds[-1] == "heartbeat":
                    break
    assert kinds[:3] == ["connected", "subscribed", "metric_update"]
    assert kinds[-1] == "heartbeat"


def test_a_client_that_pings_then_falls_silent_is_evicted(
    server: ServerProcess, tenant: Tenant
) -> None:
    token = server.token(tenant.reader_id, tenant.reader_secret)

    async def scenario() -> tuple[int, int]:
        # Never pings: heartbeats keep flowing and the connection stays.
        quiet = await connect(ws_url(server, f"?token={token}"))
        # Pings once, then stops: after 2 × heartbeat without a frame it is closed 4008.
        silent = await connect(ws_url(server, f"?token={token}"))
        await recv_json(silent)
        await send(silent, {"action": "ping", "id": 1})
        _, code = await closed_with(silent, timeout=15)
        beats = 0
        while beats < 2:
            beats += (await recv_json(quiet))["type"] == "heartbeat"
        await quiet.close()
        return code, beats

    code, beats = run_async(scenario())
    assert code == 4008
    assert beats == 2
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert "meterline_stream_slow_consumer_evictions_total 1.0" in metrics


def test_revoking_a_client_closes_its_streams(server: ServerProcess, tenant: Tenant) -> None:
    admin = server.token(tenant.client_id, tenant.client_secret)
    reader = server.token(tenant.reader_id, tenant.reader_secret)

    async def scenario() -> tuple[list[dict[str, Any]], int, int]:
        ws = await connect(ws_url(server, f"?token={reader}"))
        await recv_json(ws)
        own = await connect(ws_url(server, f"?token={admin}"))
        await recv_json(own)
        response = await asyncio.to_thread(
            httpx.delete,
            f"{server.url}/v2/admin/clients/{tenant.reader_id}",
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        frames, code = await closed_with(ws)
        # The admin's own stream is another client's and stays open.
        await send(own, {"action": "ping", "id": "still"})
        pong = await recv_until(own, lambda m: m["type"] == "pong")
        await own.close()
        return frames, code, pong["id"] == "still"

    frames, code, admin_open = run_async(scenario())
    assert code == 4401
    assert frames[-1]["error"]["code"] == "AUTH_TOKEN_INVALID"
    assert "revoked" in frames[-1]["error"]["message"]
    assert admin_open


@pytest.mark.slow
def test_a_client_revoked_from_another_process_is_closed(
    server: ServerProcess, live_dir: Path
) -> None:
    other = make_tenant(live_dir, "cli-revoked", "professional")
    token = server.token(other.reader_id, other.reader_secret)

    async def scenario() -> tuple[list[dict[str, Any]], int]:
        ws = await connect(ws_url(server, f"?token={token}"))
        await recv_json(ws)
        # What `meterline admin revoke-client` does: only the metadata database changes.
        engine = engine_from_url(f"sqlite:///{(live_dir / 'metadata.db').resolve()}")
        AuthService(engine).revoke_client(other.reader_id)
        engine.dispose()
        return await closed_with(ws, timeout=30)

    frames, code = run_async(scenario())
    assert code == 4401
    assert frames[-1]["error"]["code"] == "AUTH_TOKEN_INVALID"


@pytest.mark.slow
def test_a_client_that_stops_reading_is_evicted_over_a_real_socket(
    server: ServerProcess, tenant: Tenant
) -> None:
    # The full client: the reader was revoked by an earlier test of this module.
    token = server.token(tenant.client_id, tenant.client_secret)

    async def scenario() -> tuple[float, bool]:
        def evictions() -> float:
            text = httpx.get(f"{server.url}/metrics", timeout=30).text
            line = next(
                x for x in text.splitlines() if x.startswith("meterline_stream_slow_consumer_ev")
            )
            return float(line.split()[1])

        before = await asyncio.to_thread(evictions)
        # A tiny receive window and a client that never reads: the server's sends block.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        stuck = await websockets.connect(
            ws_url(server, f"?token={token}"), sock=sock, max_queue=1, open_timeout=30
        )
        for n in range(20):
            await send(
                stuck,
                {
                    "action": "subscribe",
                    "subscription_id": f"big{n}",
                    "metrics": "all",
                    "filters": {"time_window": "1h", "aggregation": "raw"},
                    "delivery_frequency": "real_time",
                },
            )
        # A reading client alongside keeps getting its heartbeats meanwhile.
        reader = await connect(ws_url(server, f"?token={token}"))
        deadline = time.monotonic() + 120
        beats = 0
        while time.monotonic() < deadline:
            # Traffic every 200 ms changes the values, so every tick sends ~30 KB frames.
            await asyncio.to_thread(ingest, server, tenant, traffic(20, "/stall"))
            with contextlib.suppress(TimeoutError):
                await recv_json(reader, timeout=0.2)
                beats += 1
            if await asyncio.to_thread(evictions) > before:
                break
        await reader.close()
        stuck.transport.abort()
        return await asyncio.to_thread(evictions) - before, beats > 0

    evicted, reader_served = run_async(scenario())
    assert evicted == 1
    assert reader_served
