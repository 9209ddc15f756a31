"""Fixtures: alerting over the embedded store with a frozen clock, a real SMTP sink
(aiosmtpd) and a real HTTP receiver for webhooks."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller

from meterline.alerts import AlertRunner, AlertsConfig, AlertService
from meterline.auth import AuthService
from meterline.clock import FrozenClock
from meterline.events import PriceTable, RawEvent, RouteNormaliser, validate_event
from meterline.metadb import engine_from_url, migrate
from meterline.query import QueryService
from meterline.reports import ReportsConfig
from meterline.store import Store
from tests.helpers import free_port

_names = itertools.count()


def event_rows(org_id: str, events: list[dict[str, Any]], now: float) -> list[list[Any]]:
    """Store rows for ``events`` (as the ingest path validates them)."""
    rows = []
    for i, fields in enumerate(events):
        raw = msgspec.convert({"event_id": f"e{next(_names)}-{i}", **fields}, RawEvent)
        row = validate_event(
            raw,
            org_id=org_id,
            now_ms=int(now * 1000),
            retention_days=30,
            normaliser=RouteNormaliser(),
            prices=PriceTable(),
        )
        assert isinstance(row, list), row
        rows.append(row)
    return rows


def minute_events(minute: int, count: int, **fields: Any) -> list[dict[str, Any]]:
    """``count`` request events spread over one minute (index = Unix seconds // 60)."""
    base = {"method": "GET", "path": "/a", "status": 200, "latency_ms": 20.0, "region": "US"}
    return [
        {**base, **fields, "timestamp": int((minute * 60 + (i * 59.0 / max(count, 1))) * 1000)}
        for i in range(count)
    ]


@dataclass
class Alerting:
    service: AlertService
    runner: AlertRunner
    clock: FrozenClock
    org_id: str
    store: Store

    def ingest(self, events: list[dict[str, Any]]) -> None:
        self.store.insert_rows(event_rows(self.org_id, events, self.clock()))


@pytest.fixture
def make_alerting(tmp_path: Path, chdb_store: Store) -> Iterator[Any]:
    engines = []

    def make(now: float, **config: Any) -> Alerting:
        engine = engine_from_url(f"sqlite:///{tmp_path / 'metadata.db'}")
        migrate(engine)
        engines.append(engine)
        clock = FrozenClock(now)
        org = AuthService(engine, clock).create_org(f"alerting-{next(_names)}-{now}", "enterprise")
        settings = AlertsConfig(
            **{"anomaly_lag": 0.0, "learning": 600.0, "retry_backoff": 10.0, **config}
        )
        service = AlertService(engine, clock, settings)
        runner = AlertRunner(service, QueryService(chdb_store, clock))
        return Alerting(service, runner, clock, org["org_id"], chdb_store)

    yield make
    for engine in engines:
        engine.dispose()


class Sink:
    """An SMTP sink that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(
            (
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.content, policy=email.policy.default),
            )
        )
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


def smtp_config(port: int) -> ReportsConfig:
    return ReportsConfig(smtp_host="127.0.0.1", smtp_port=port)


@dataclass
class Receiver:
    """A real HTTP server that records webhook calls; answers ``failures`` 503s first."""

    url: str
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    failures: int = 0

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.calls]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    state = Receiver(f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = 200
            if state.failures:
                state.failures -= 1
                status = 503
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
