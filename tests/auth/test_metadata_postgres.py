"""The metadata database on a real PostgreSQL server (the production alternative to SQLite)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterline.auth import AuthService
from meterline.metadb import engine_from_url, migrate
from tests.helpers import free_port

pytestmark = pytest.mark.slow


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"PostgreSQL's {name} is missing: run 'make system-deps'")
    return found[-1]


def _as_postgres(*cmd: str) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="meterline-pg-"))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        _as_postgres(
            _bin("initdb"), "-D", str(data), "-U", "meterline", "--auth=trust", "-E", "UTF8"
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        _as_postgres(
            _bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sockets),
            "-h",
            "127.0.0.1",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"postgresql://meterline@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = subprocess.run(
            [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        )
        if ready.returncode == 0:
            break
        time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(base, ignore_errors=True)


def test_orgs_clients_and_tokens_on_postgres(postgres_url: str) -> None:
    engine = engine_from_url(postgres_url)
    applied = migrate(engine)
    assert ("auth", 1) in applied
    assert migrate(engine) == []  # idempotent
    auth = AuthService(engine)
    org = auth.create_org("pg-org", "professional")
    client = auth.create_client(org["org_id"], "analytics:read")
    token = auth.issue_token(client["client_id"], client["client_secret"], None)["access_token"]
    principal = auth.principal_from_token(token)
    assert principal.org_id == org["org_id"] and principal.plan == "professional"
    key = auth.create_ingest_key("pg-org")["key"]
    assert auth.principal_from_ingest_key(key).org_id == org["org_id"]
    # A second service on the same database (another node) sees the same signing key.
    other_engine = engine_from_url(postgres_url)
    other = AuthService(other_engine)
    assert other.principal_from_token(token).subject == client["client_id"]
    other_engine.dispose()
    engine.dispose()
