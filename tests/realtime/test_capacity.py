"""A node at its stream capacity answers new streams 1013 (try later), after an error
frame, and takes them again once a stream has closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ServerProcess, Tenant, make_tenant
from tests.realtime.traffic import ws_url
from tests.realtime.wsclient import closed_with, connect, recv_json, run_async

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def small_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Tenant]]:
    root: Path = tmp_path_factory.mktemp("capacity")
    tenant = make_tenant(root, "crowded", "enterprise")
    server = ServerProcess(root, env={"METERLINE_STREAM_MAX_CONNECTIONS": "2"})
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
