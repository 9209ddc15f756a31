"""Shared test helpers: a real server process, credentials, and polling."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec

from meterline.auth import AuthService
from meterline.events import PriceTable, RawEvent, RouteNormaliser, validate_event
from meterline.metadb import engine_from_url, migrate

T = TypeVar("T")


def event_row(org_id: str, now_ms: int, **fields: Any) -> list[Any]:
    """The store row ``validate_event`` builds from an event's wire fields (which must be
    valid), with the default route rules and prices and 30 days' retention."""
    row = validate_event(
        msgspec.convert(fields, RawEvent),
        org_id=org_id,
        now_ms=now_ms,
        retention_days=30,
        normaliser=RouteNormaliser(),
        prices=PriceTable(),
    )
    assert isinstance(row, list), row
    return row


def run_python(args: list[str], timeout: float = 180) -> dict[str, Any]:
    """Run ``python <args>`` from the repository root in a fresh interpreter (chDB opens
    one store per process) and return the JSON object its last output line holds."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Call ``check`` until it stops raising AssertionError (acknowledged events reach
    the store within the flush interval), then return its result."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


@dataclass
class Tenant:
    """An org with an all-scopes client, a read-only client and an ingest key."""

    org_id: str
    client_id: str
    client_secret: str
    reader_id: str
    reader_secret: str
    ingest_key: str
    tokens: dict[str, str] = field(default_factory=dict)


def make_tenant(data_dir: Path, name: str, plan: str = "basic", operator: bool = False) -> Tenant:
    engine = engine_from_url(f"sqlite:///{(data_dir / 'metadata.db').resolve()}")
    migrate(engine)
    auth = AuthService(engine)
    org = auth.create_org(name, plan, operator=operator)
    full = auth.create_client(
        org["org_id"], "analytics:read reports:read reports:write admin:manage events:write"
    )
    reader = auth.create_client(org["org_id"], "analytics:read")
    key = auth.create_ingest_key(org["org_id"])
    engine.dispose()
    return Tenant(
        org["org_id"],
        full["client_id"],
        full["client_secret"],
        reader["client_id"],
        reader["client_secret"],
        key["key"],
    )


class ServerProcess:
    """``meterline serve`` in a subprocess on a free loopback port."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, log_level: str = "warning"
    ) -> None:
        self.data_dir = data_dir
        self.log_level = log_level
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "METERLINE_FLUSH_INTERVAL": "0.2",
            "METERLINE_FLUSH_MAX_DELAY": "1.0",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as handle:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "meterline",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    "--log-level",
                    self.log_level,
                ],
                stdout=handle,
                stderr=handle,
                env=self.env,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.proc.kill()  # not left running when the fixture gives up on it
        self.proc.wait()
        raise RuntimeError(f"server not ready: {self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def token(self, client_id: str, secret: str, scope: str | None = None) -> str:
        data: dict[str, Any] = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        }
        if scope:
            data["scope"] = scope
        response = httpx.post(f"{self.url}/oauth/token", json=data, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])
