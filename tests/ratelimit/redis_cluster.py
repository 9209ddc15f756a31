"""A real three-node Redis Cluster on free ports, for tests that need Cluster semantics."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import redis

from tests.helpers import free_port


def node_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10_000 > 65_535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port


class Cluster:
    """Three ``redis-server --cluster-enabled`` nodes on free ports, slots assigned."""

    def __init__(self) -> None:
        self.ports = [node_port() for _ in range(3)]
        self.dir = tempfile.mkdtemp(prefix="ml-cluster-")
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        for port in self.ports:
            self.procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"{self.dir}/nodes-{port}.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        self.dir,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            self._wait(lambda p=port: redis.Redis(port=p).ping())
        # slots split three ways, then the nodes meet
        bounds = [(0, 5460), (5461, 10922), (10923, 16383)]
        for port, (low, high) in zip(self.ports, bounds, strict=True):
            redis.Redis(port=port).execute_command("CLUSTER ADDSLOTSRANGE", low, high)
        first = redis.Redis(port=self.ports[0])
        for port in self.ports[1:]:
            first.execute_command("CLUSTER MEET", "127.0.0.1", port)
        for port in self.ports:
            self._wait(lambda p=port: redis.Redis(port=p).cluster("info")["cluster_state"] == "ok")

    @staticmethod
    def _wait(ready: object) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if ready():  # type: ignore[operator]
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis cluster did not come up")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming one node (any node will do)."""
        return f"redis+cluster://127.0.0.1:{self.ports[1]}"

    def flush(self) -> None:
        """Empty every node."""
        for port in self.ports:
            redis.Redis(port=port).flushall()
