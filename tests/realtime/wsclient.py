"""A small test client over the ``websockets`` package: receive until a predicate holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import websockets
from websockets.asyncio.client import ClientConnection

T = TypeVar("T")


async def connect(url: str, **kwargs: Any) -> ClientConnection:
    return await websockets.connect(url, open_timeout=10, **kwargs)


async def recv_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), timeout)))


async def recv_until(
    ws: ClientConnection, check: Callable[[dict[str, Any]], bool], timeout: float = 15.0
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await recv_json(ws, max(0.1, deadline - loop.time()))
        if check(message):
            return message


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def closed_with(
    ws: ClientConnection, timeout: float = 15.0
) -> tuple[list[dict[str, Any]], int]:
    """Every frame until the server closes, and the close code."""
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None
        return frames, closed.rcvd.code


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop in its own thread (Playwright's sync API may
    already own this thread's loop when browser tests ran earlier in the session)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
