"""Redis Cluster: every key of one decision hashes to one slot, and a real three-node
cluster decides exactly like a single Redis."""

from __future__ import annotations

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
    aio,
    storage_from_url,
)
from tests.ratelimit.aio_run import run
from tests.ratelimit.redis_cluster import Cluster

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


@pytest.mark.slow
def test_a_real_cluster_decides_every_tier_atomically(redis_cluster: Cluster) -> None:
    cluster = redis_cluster
    cluster.flush()
    storage = storage_from_url(cluster.url, timeout=5.0)
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


@pytest.mark.slow
def test_the_asyncio_cluster_storage_decides_every_tier_atomically(redis_cluster: Cluster) -> None:
    redis_cluster.flush()

    async def scenario() -> tuple[list[bool], str | None, dict[str, int], list[str]]:
        storage = aio.storage_from_url(redis_cluster.url, timeout=5.0)
        assert isinstance(storage, aio.RedisClusterStorage)
        limiter = aio.RateLimiter(storage, TIERS, clock=FrozenClock(T0))
        try:
            decisions = [await limiter.hit(WHO) for _ in range(5)]
            left = {s.rule.name: s.remaining for s in (await limiter.peek(WHO)).states}
            for d in decisions[:3]:
                await limiter.release(d)
            after = await limiter.peek(WHO)
            _, prepared = limiter.prepare_request(WHO, None, 1, None)
            return (
                [d.allowed for d in decisions],
                decisions[3].rule.name if decisions[3].rule is not None else None,
                {**left, "inflight_after": after.states[-1].remaining},
                [c.key for c in prepared.checks],
            )
        finally:
            await limiter.close()

    allowed, denier, left, keys = run(scenario())
    assert allowed == [True, True, True, False, False]
    assert denier == "consumer"
    # the two denials consumed nothing from the other tiers
    assert left["ip"] == 100 - 3 - 1 and left["reports"] == 10 - 3 - 1
    assert left["inflight"] == 5 - 3 - 1 and left["inflight_after"] == 5 - 1  # released
    # the keys the asyncio client wrote live on the one node that owns their slot
    slot = key_slot(keys[0].encode())
    holders = [
        p for p in redis_cluster.ports if redis.Redis(port=p).cluster("countkeysinslot", slot)
    ]
    assert len(holders) == 1
