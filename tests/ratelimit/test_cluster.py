"""Redis Cluster: every key of one decision hashes to one slot, and a real three-node
cluster decides exactly like a single Redis."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot

from meterline.clock import FrozenClock
from meterline.ratelimit import (
    Algorithm,
    Identity,
    MemoryStorage,
    Period,
    RateLimiter,
    RedisClusterStorage,
    Rule,
    storage_from_url,
)
from tests.helpers import free_port

T0 = 1_699_999_200.0
TIERS = [
    Rule("global", 10_000, 60, Algorithm.SLIDING_WINDOW),
    Rule("org", 1000, 3600, Algorithm.GCRA, per=("org",), burst=50),
    Rule("consumer", 3, 60, Algorithm.SLIDING_LOG, per=("org", "consumer")),
    Rule("ip", 100, 60, Algorithm.FIXED_WINDOW, per=("ip",)),
    Rule("reports", 10, period=Period.DAY, per=("org",), match="/v2/reports*", quota=True),
    Rule("inflight", 5, 30, Algorithm.CONCURRENCY, per=("org",)),
]
WHO = Identity(org="acme", consumer="alice", ip="203.0.113.7", endpoint="/v2/reports/r1")


def decision_keys(limiter: RateLimiter, identity: Identity) -> list[str]:
    """The Redis keys one decision for ``identity`` touches."""
    _, prepared = limiter.prepare_request(identity, None, 1, None)
    return [c.key for c in prepared.checks]


def test_every_key_of_a_decision_hashes_to_one_slot() -> None:
    limiter = RateLimiter(MemoryStorage(), TIERS, clock=FrozenClock(T0))
    keys = decision_keys(limiter, WHO)
    assert len(keys) == len(TIERS)  # every tier applies to this request
    assert all("{meterline}" in k for k in keys)
    assert len({key_slot(k.encode()) for k in keys}) == 1
    # a different caller's decision shares the slot too (the global tier needs that)
    other = decision_keys(limiter, Identity(org="globex", consumer="bob", ip="198.51.100.1"))
    assert {key_slot(k.encode()) for k in other} == {key_slot(keys[0].encode())}


def test_a_per_org_hash_tag_spreads_orgs_over_slots() -> None:
    per_org = [r for r in TIERS if r.per and r.per[0] == "org"]
    limiter = RateLimiter(
        MemoryStorage(), per_org, clock=FrozenClock(T0), hash_tag=lambda who: who.org or "-"
    )
    acme = decision_keys(limiter, WHO)
    globex = decision_keys(limiter, WHO._replace(org="globex"))
    assert len({key_slot(k.encode()) for k in acme}) == 1
    assert len({key_slot(k.encode()) for k in globex}) == 1
    assert key_slot(acme[0].encode()) != key_slot(globex[0].encode())
    # a tag cannot smuggle braces into the key and break the slot rule
    odd = RateLimiter(MemoryStorage(), per_org, hash_tag=lambda who: "{x}y")
    assert len({key_slot(k.encode()) for k in decision_keys(odd, WHO)}) == 1


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


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        made.start()
        yield made
    finally:
        made.stop()


@pytest.mark.slow
def test_a_real_cluster_decides_every_tier_atomically(cluster: Cluster) -> None:
    url = f"redis+cluster://127.0.0.1:{cluster.ports[1]}"
    storage = storage_from_url(url, timeout=5.0)
    assert isinstance(storage, RedisClusterStorage)
    limiter = RateLimiter(storage, TIERS, clock=FrozenClock(T0))
    try:
        decisions = [limiter.hit(WHO) for _ in range(5)]
        assert [d.allowed for d in decisions] == [True, True, True, False, False]
        assert decisions[3].rule is not None and decisions[3].rule.name == "consumer"
        left = {s.rule.name: s.remaining for s in limiter.peek(WHO).states}
        # the two denials consumed nothing from the other tiers
        assert left["ip"] == 100 - 3 - 1 and left["reports"] == 10 - 3 - 1
        for d in decisions[:3]:
            limiter.release(d)
        # the keys live on the one node that owns their slot
        slot = key_slot(decision_keys(limiter, WHO)[0].encode())
        holders = [
            port
            for port in cluster.ports
            if redis.Redis(port=port).cluster("countkeysinslot", slot)
        ]
        assert len(holders) == 1
    finally:
        limiter.close()
