"""Capture tests: a fresh org on the real server per test, and the example apps."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.helpers import ServerProcess, eventually, free_port, make_tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_names = itertools.count()


@dataclass
class Org:
    """A fresh org on the running server: where captured events go, and how to read them."""

    server: ServerProcess
    key: str
    token: str

    def query(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = httpx.post(
            f"{self.server.url}/v2/query",
            json={"range": "24h", **body},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["data"]
        return rows

    def by_request(self) -> dict[tuple[str, str, int, str], dict[str, Any]]:
        """Counts and sizes per (method, route, status, consumer)."""
        rows = self.query(
            {
                "metrics": ["requests", "bandwidth_bytes", "latency_avg"],
                "dimensions": ["method", "route", "status", "consumer_id"],
            }
        )
        return {(r["method"], r["route"], int(r["status"]), r["consumer_id"]): r for r in rows}


@pytest.fixture
def org(server: ServerProcess, server_dir: Path) -> Org:
    tenant = make_tenant(server_dir, f"capture-{next(_names)}")
    return Org(server, tenant.ingest_key, server.token(tenant.reader_id, tenant.reader_secret))


@contextlib.contextmanager
def serving(app: Any, kind: str) -> Iterator[httpx.Client]:
    """Serve ``app`` over real HTTP on a free port (uvicorn for ASGI, wsgiref for WSGI)
    and yield an HTTP client for it."""
    port = free_port()
    if kind == "asgi":
        import uvicorn

        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
                proxy_headers=False,
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        eventually(lambda: _assert(server.started), timeout=20)
        stop: Any = lambda: setattr(server, "should_exit", True)  # noqa: E731
    else:
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = make_server("127.0.0.1", port, app, handler_class=Quiet)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()

    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        stop()
        thread.join(timeout=10)


def _assert(value: Any) -> None:
    assert value


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as module ``name``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
