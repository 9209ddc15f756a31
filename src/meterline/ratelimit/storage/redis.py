"""Counters in Redis: one Lua script, one round trip per decision, bounded by a timeout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from meterline.ratelimit.algorithms import Check
from meterline.ratelimit.decision import RuleState
from meterline.ratelimit.resources import lua
from meterline.ratelimit.storage.base import Storage, StorageError

SCRIPT = lua("check_and_consume")
DEFAULT_TIMEOUT = 0.05
"""Seconds to connect, send or wait for an answer before the failure policy applies."""


def script_args(
    now: float, checks: Sequence[Check], token: str, consume: bool
) -> tuple[list[str], list[Any]]:
    """The KEYS and ARGV of ``check_and_consume.lua`` for one decision."""
    args: list[Any] = [repr(now), "1" if consume else "0", token]
    for c in checks:
        args += [c.algorithm.value, c.limit, repr(c.window), c.capacity, c.cost, repr(c.end)]
    return [c.key for c in checks], args


def parse_reply(raw: list[Any], checks: Sequence[Check]) -> tuple[bool, list[RuleState]]:
    """Decode the script's flat reply into one state per check."""
    states = [
        RuleState(
            c.rule, c.limit, bool(raw[i]), int(raw[i + 1]), float(raw[i + 2]), float(raw[i + 3])
        )
        for c, i in zip(checks, range(1, len(raw), 4), strict=True)
    ]
    return bool(raw[0]), states


def client_options(timeout: float) -> dict[str, Any]:
    """redis-py options that bound every call: its socket timeouts default to none, and
    its default retries would multiply the wait; the limiter's breaker decides instead."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 0,
    }


class RedisStorage(Storage):
    """Counters in Redis (or Valkey), shared by every process of a deployment.

    Each decision is one ``EVALSHA`` of ``check_and_consume.lua`` whatever the number of
    rules, so tiers are consumed atomically. Every network call is bounded by ``timeout``
    (connect and read), and failures surface as :class:`StorageError`.
    """

    SCHEMES = ("redis", "rediss", "unix")

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 64,
    ) -> None:
        self.url = url
        self.timeout = timeout
        # A blocking pool waits (up to ``timeout``) for a free connection under bursts
        # instead of failing with "too many connections".
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout, **client_options(timeout)
        )
        self.client: redis.Redis = redis.Redis.from_pool(pool)
        self._script = self.client.register_script(SCRIPT)

    def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """See :meth:`Storage.apply`; atomic because Redis runs the script alone."""
        keys, args = script_args(now, checks, token, consume)
        try:
            raw = self._script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc
        return parse_reply(raw, checks)

    def release(self, key: str, token: str) -> None:
        """See :meth:`Storage.release`."""
        try:
            self.client.zrem(key, token)
        except redis.RedisError as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc

    def clear(self) -> None:
        """See :meth:`Storage.clear`: deletes the limiter's keys (``SCAN``, never ``KEYS``)."""
        try:
            for key in self.client.scan_iter(match="ml:*", count=1000):
                self.client.delete(key)
        except redis.RedisError as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
