"""The fan-out floor: a bare Starlette broadcast loop (the FastAPI docs' pattern).

Every 100 ms (a fixed cadence) it builds one ~1 KB ``metric_update``-shaped frame
stamped with the time and sends it to every open socket in turn, awaiting each send. No
auth, no subscriptions, no queues: what any Starlette WebSocket server pays to move the
same bytes. Run by
``bench/stream.py`` under uvicorn with the same WebSocket settings as ``meterline serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

INTERVAL = 0.1
METRICS = (
    "requests",
    "requests_per_minute",
    "errors",
    "error_rate",
    "api_response_time",
    "p50_latency",
    "p95_latency",
    "p99_latency",
    "active_users",
    "active_consumers",
    "bandwidth",
    "request_bytes",
)

sockets: set[WebSocket] = set()


def _frame(seq: int) -> str:
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    body: dict[str, Any] = {
        "type": "metric_update",
        "subscription_id": "rt1",
        "seq": seq,
        "metrics": [
            {"name": m, "value": 1234.5 + i, "change": 12.5, "unit": "count"}
            for i, m in enumerate(METRICS)
        ],
        "window": {"from": stamp, "to": stamp},
        "timestamp": stamp,
    }
    return json.dumps(body, separators=(",", ":"))


async def _broadcast() -> None:
    loop = asyncio.get_running_loop()
    due = loop.time()
    seq = 0
    while True:
        # A fixed cadence (not a sleep after each round), so every socket is offered
        # 10 frames a second however long a round takes.
        due += INTERVAL
        await asyncio.sleep(max(0.0, due - loop.time()))
        seq += 1
        frame = _frame(seq)
        for ws in list(sockets):
            try:
                await ws.send_text(frame)
            except Exception:
                sockets.discard(ws)


async def stream(ws: WebSocket) -> None:
    await ws.accept()
    sockets.add(ws)
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        sockets.discard(ws)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(_broadcast())
    yield
    task.cancel()


app = Starlette(routes=[WebSocketRoute("/v2/stream", stream)], lifespan=lifespan)
