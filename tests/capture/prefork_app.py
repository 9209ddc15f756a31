"""Apps for the pre-fork test, loaded by gunicorn with ``--preload``: the capture client
is made, and its exporter thread started, in the master before the workers fork.

Each request's consumer is the pid of the worker that served it, so the test can tell
whose events reached the sink; the body says the same pid.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from meterline.capture import CaptureClient, MeterlineMiddleware, init_flask


def worker(_request: Any) -> str:
    """The consumer: the serving process."""
    return f"pid-{os.getpid()}"


capture = CaptureClient(identify=worker, interval=0.1)
# An event from the master itself, so its exporter thread is running when gunicorn forks.
capture.record_event({"type": "custom", "consumer_id": "master", "properties": {"at": "import"}})
capture.flush(timeout=10)

flask_app = Flask(__name__)


@flask_app.get("/work/<int:n>")
def flask_work(n: int) -> str:
    time.sleep(0.05)  # keeps a sync worker busy so the other one takes requests too
    return f"pid-{os.getpid()}"


init_flask(flask_app, capture)


async def asgi_work(request: Request) -> PlainTextResponse:
    time.sleep(0.05)  # blocks this worker's loop, so the other worker takes requests too
    return PlainTextResponse(f"pid-{os.getpid()}")


asgi_app = MeterlineMiddleware(
    Starlette(routes=[Route("/work/{n:int}", asgi_work)]), client=capture
)
