"""A node at its stream capacity answers new streams 1013 (try later), after an error
frame, and takes them again once a stream has closed. The same node sends frames through
the plain ASGI ``send`` (direct writes off), so that path is served end to end too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ServerProcess, Tenant, eventually, make_tenant
from tests.realtime.traffic import ingest, traffic, ws_url
from tests.realtime.wsclient import closed_with, connect, recv_json, recv_until, run_async, send

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def small_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Tenant]]:
    root: Path = tmp_path_factory.mktemp("capacity")
    tenant = make_tenant(root, "crowded", "enterprise")
    server = ServerProcess(
        root,
        env={"METERLINE_STREAM_MAX_CONNECTIONS": "2", "METERLINE_STREAM_DIRECT_WRITES": "0"},
    )
    server.start()
    try:
        yield server, tenant
    finally:
        server.stop()


def test_a_full_node_closes_new_streams_1013_and_takes_them_again_later(
    small_node: tuple[ServerProcess, Tenant],
) -> None:
    server, tenant = small_node
    token = server.token(tenant.reader_id, tenant.reader_secret)
    url = ws_url(server, f"?token={token}")

    async def scenario() -> tuple[list[str], list[dict[str, Any]], int, str]:
        held = [await connect(url), await connect(url)]
        kinds = [(await recv_json(ws))["type"] for ws in held]
        frames, code = await closed_with(await connect(url))
        await held[0].close()
        later = ""
        for _ in range(50):  # the server forgets the closed stream within a moment
            ws = await connect(url)
            first = await recv_json(ws)
            await ws.close()
            if first["type"] == "connected":
                later = "connected"
                break
        await held[1].close()
        return kinds, frames, code, later

    kinds, frames, code, later = run_async(scenario())
    assert kinds == ["connected", "connected"]
    assert code == 1013
    assert frames[-1]["type"] == "error"
    assert frames[-1]["error"]["code"] == "SERVER_OVERLOADED"
    assert "backoff" in frames[-1]["error"]["details"]
    assert later == "connected"


def _write_paths(server: ServerProcess) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    prefix = "meterline_stream_connections_by_write_path{path="
    return {
        line[len(prefix) + 1 : line.index('"}')]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def test_frames_go_through_asgi_send_when_direct_writes_are_off(
    small_node: tuple[ServerProcess, Tenant],
) -> None:
    server, tenant = small_node
    token = server.token(tenant.reader_id, tenant.reader_secret)

    async def scenario() -> tuple[list[str], dict[str, Any], dict[str, float]]:
        ws = await connect(ws_url(server, f"?token={token}"))
        kinds = [(await recv_json(ws))["type"]]
        await send(
            ws,
            {
                "action": "subscribe",
                "subscription_id": "asgi",
                "metrics": ["requests"],
                "filters": {"endpoints": ["/asgi/a"]},
                "delivery_frequency": "real_time",
            },
        )
        kinds += [(await recv_json(ws))["type"], (await recv_json(ws))["type"]]
        ingest(server, tenant, traffic(30, "/asgi"))
        update = await recv_until(
            ws, lambda m: m["type"] == "metric_update" and m["metrics"][0]["value"] == 10
        )

        def asgi_only() -> dict[str, float]:
            paths = _write_paths(server)
            assert paths == {"direct": 0.0, "asgi": 1.0}
            return paths

        paths = await asyncio.to_thread(eventually, asgi_only)
        await ws.close()
        return kinds, update, paths

    kinds, update, paths = run_async(scenario())
    assert kinds == ["connected", "subscribed", "metric_update"]
    assert update["seq"] >= 2
    assert paths["asgi"] == 1.0
