"""Shared bench helpers: start a real Meterline server process and make a tenant."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from meterline.auth import AuthService
from meterline.metadb import engine_from_url, migrate


def process_cpu(pid: int) -> tuple[float, float]:
    """User + system CPU seconds of a process, and of its children (ingest workers)."""
    proc = psutil.Process(pid)
    own = float(sum(proc.cpu_times()[:2]))
    children = 0.0
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children += sum(child.cpu_times()[:2])
    return own, children


def metric(url: str, sample: str) -> float:
    """The value of one sample (a metric's name with its labels, as exposed) from the
    server's ``/metrics``; 0 while the server has not exposed it."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], path: str = "/readyz", timeout: float = 120
) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


def tenant(data_dir: Path) -> dict[str, Any]:
    engine = engine_from_url(f"sqlite:///{(data_dir / 'metadata.db').resolve()}")
    migrate(engine)
    auth = AuthService(engine)
    org = auth.create_org(f"bench-{time.time_ns()}", "enterprise")
    client = auth.create_client(org["org_id"], "analytics:read events:write")
    key = auth.create_ingest_key(org["org_id"])
    engine.dispose()
    return {"org_id": org["org_id"], **client, "key": key["key"]}


def start_server(data_dir: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meterline",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=log,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
