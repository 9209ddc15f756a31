"""Counters in Redis: one Lua script, one round trip per decision, bounded by a timeout."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from meterline.ratelimit.algorithms import Check, _state
from meterline.ratelimit.decision import RuleState
from meterline.ratelimit.resources import lua
from meterline.ratelimit.storage.base import Storage, StorageError

if TYPE_CHECKING:
    from redis.cluster import RedisCluster

SCRIPT = lua("check_and_consume")
DEFAULT_TIMEOUT = 0.05
"""Seconds to connect, send or wait for an answer before the failure policy applies."""


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


CONSUME = {True: _bulk(b"1"), False: _bulk(b"0")}
ARGS_PER_CHECK = 6


def _encode_check(c: Check) -> tuple[bytes, bytes]:
    """A check's KEYS entry and its six ARGV values, as RESP bulk strings."""
    values = (c.algorithm.value, c.limit, repr(c.window), c.capacity, c.cost, repr(c.end))
    return _bulk(c.key.encode()), b"".join(_bulk(str(v).encode()) for v in values)


class ScriptCall:
    """Packs ``EVALSHA`` of ``check_and_consume.lua`` straight into RESP bytes.

    The per-check parts (key, algorithm, limit, window...) are encoded once and kept on
    the :class:`Check`, which the limiter reuses while its window lasts; per decision only
    the time, the consume flag and the token are encoded.
    """

    def __init__(self, script: str) -> None:
        self.sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        self._heads: dict[int, bytes] = {}

    def _head(self, n: int) -> bytes:
        head = self._heads.get(n)
        if head is None:
            count = 3 + n + 3 + ARGS_PER_CHECK * n
            head = b"*%d\r\n" % count + _bulk(b"EVALSHA") + _bulk(self.sha.encode())
            head = self._heads[n] = head + _bulk(str(n).encode())
        return head

    def pack(self, now: float, checks: Sequence[Check], token: str, consume: bool) -> bytes:
        """The ``EVALSHA`` command for one decision."""
        parts = [self._head(len(checks))]
        encoded = []
        for c in checks:
            e = c.encoded
            if e is None:
                e = c.encoded = _encode_check(c)
            parts.append(e[0])
            encoded.append(e[1])
        parts.append(_bulk(repr(now).encode()))
        parts.append(CONSUME[consume])
        parts.append(_bulk(token.encode()))
        parts += encoded
        return b"".join(parts)


def parse_reply(raw: list[Any], checks: Sequence[Check]) -> tuple[bool, list[RuleState]]:
    """Decode the script's flat reply (``all_allowed``, then four values per check) into
    one state per check."""
    states = []
    i = 1
    for c in checks:
        states.append(
            _state(
                (
                    c.rule,
                    c.limit,
                    raw[i] == 1,
                    int(raw[i + 1]),
                    float(raw[i + 2]),
                    float(raw[i + 3]),
                )
            )
        )
        i += 4
    return raw[0] == 1, states


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


def _call(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    found = method()
    if found is not None:
        found()


class ConnectionPool:
    """A last-in first-out pool of redis-py connections with no per-call bookkeeping.

    redis-py's own pools spend more client CPU per command than the rest of a decision
    (locks, queues and connection metrics on every get and release); here taking and
    returning an idle connection is one ``deque`` operation. At most ``size`` connections
    are open; when all are busy a caller waits up to ``timeout`` for one, then fails.
    """

    def __init__(self, url: str, size: int, timeout: float) -> None:
        # redis-py's pool is kept as the factory: it knows every URL form (TLS, sockets).
        self.factory = redis.ConnectionPool.from_url(url, **client_options(timeout))
        self.size = size
        self.timeout = timeout
        self.idle: deque[redis.connection.ConnectionInterface] = deque()
        self.opened = 0
        self._lock = threading.Lock()
        forget = weakref.WeakMethod(self._forget)  # the hook must not keep the pool alive
        os.register_at_fork(after_in_child=lambda: _call(forget))

    def _forget(self) -> None:
        # a child process must not share its parent's sockets
        self.idle = deque()
        self.opened = 0

    def take(self) -> redis.connection.ConnectionInterface:
        """An idle connection, a new one, or (all busy) the first one freed in time."""
        try:
            return self.idle.pop()
        except IndexError:
            pass
        deadline = time.monotonic() + self.timeout
        while True:
            with self._lock:
                if self.opened < self.size:
                    self.opened += 1
                    break
            try:
                return self.idle.pop()
            except IndexError:
                if time.monotonic() >= deadline:
                    raise redis.ConnectionError("no free rate-limit connection") from None
                time.sleep(0.0005)
        try:
            return self.factory.make_connection()
        except BaseException:
            with self._lock:
                self.opened -= 1
            raise

    def give(self, conn: redis.connection.ConnectionInterface) -> None:
        """Return a connection taken from this pool."""
        self.idle.append(conn)

    def close(self) -> None:
        """Disconnect every idle connection."""
        while self.idle:
            self.idle.pop().disconnect()  # type: ignore[no-untyped-call]
        self.factory.disconnect()


class RedisStorage(Storage):
    """Counters in Redis (or Valkey), shared by every process of a deployment.

    Each decision is one ``EVALSHA`` of ``check_and_consume.lua`` whatever the number of
    rules, so tiers are consumed atomically, sent as pre-packed bytes on a pooled
    connection (see :class:`ScriptCall`, :class:`ConnectionPool`). Every network call is
    bounded by ``timeout`` (connect and read), and failures surface as
    :class:`StorageError`.
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
        self.pool = ConnectionPool(url, max_connections, timeout)
        self.client: redis.Redis = redis.Redis.from_pool(self.pool.factory)
        self.call = ScriptCall(SCRIPT)

    def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """See :meth:`Storage.apply`; atomic because Redis runs the script alone."""
        packed = [self.call.pack(now, checks, token, consume)]
        try:
            raw = self._send(packed)
        except (redis.RedisError, OSError) as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc
        return parse_reply(raw, checks)

    def _send(self, packed: list[bytes]) -> Any:
        pool = self.pool
        conn: Any = pool.take()  # redis-py's connection methods are untyped
        try:
            conn.send_packed_command(packed, check_health=False)
            try:
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                conn.send_command("SCRIPT", "LOAD", SCRIPT)
                conn.read_response()
                conn.send_packed_command(packed, check_health=False)
                return conn.read_response()
        except BaseException:
            conn.disconnect()  # a half-read reply must not reach the next caller
            raise
        finally:
            pool.give(conn)

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
        self.pool.close()


def script_args(
    now: float, checks: Sequence[Check], token: str, consume: bool
) -> tuple[list[str], list[Any]]:
    """The KEYS and ARGV of ``check_and_consume.lua`` for one decision (for clients that
    pack commands themselves)."""
    args: list[Any] = [repr(now), "1" if consume else "0", token]
    for c in checks:
        args += [c.algorithm.value, c.limit, repr(c.window), c.capacity, c.cost, repr(c.end)]
    return [c.key for c in checks], args


FAILURES = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)
"""What a Redis or Redis Cluster call raises when the storage fails (redis-py's cluster
errors are not all ``RedisError``s)."""


class RedisClusterStorage(Storage):
    """Counters on a Redis Cluster (URL scheme ``redis+cluster://host:port``, any node).

    Every key of a decision carries the same ``{hash tag}`` (see ``hash_tag`` of the
    limiter), so the decision's script runs on the one node that owns that slot, still
    one round trip and atomic. redis-py's cluster client routes by slot and follows
    ``MOVED`` redirections when slots migrate. The client connects on first use: a
    cluster that is down when the limiter starts is a storage failure (the rules' policy
    decides), not an error at start-up.
    """

    SCHEMES = ("redis+cluster", "rediss+cluster")

    def __init__(
        self, url: str = "redis+cluster://localhost:7000", *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._options = client_options(timeout)
        self._options.pop("health_check_interval")
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()
        self.sha = ScriptCall(SCRIPT).sha

    @property
    def client(self) -> RedisCluster:
        """The cluster client (connecting, and learning the slots, on first use)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    from redis.cluster import RedisCluster

                    plain = self.url.replace("+cluster", "", 1)
                    self._client = RedisCluster.from_url(plain, **self._options)
                client = self._client
        return client

    def apply(
        self, now: float, checks: Sequence[Check], token: str, consume: bool
    ) -> tuple[bool, Sequence[RuleState]]:
        """See :meth:`Storage.apply`."""
        keys, args = script_args(now, checks, token, consume)
        try:
            client = self.client
            try:
                raw = client.evalsha(self.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                # EVAL runs the script on the slot's node and caches it there
                raw = client.eval(SCRIPT, len(keys), *keys, *args)
        except FAILURES as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc
        return parse_reply(raw, checks)

    def release(self, key: str, token: str) -> None:
        """See :meth:`Storage.release`."""
        try:
            self.client.zrem(key, token)
        except FAILURES as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc

    def clear(self) -> None:
        """Delete the limiter's keys on every primary (``SCAN``, never ``KEYS``)."""
        try:
            client = self.client
            for key in client.scan_iter(match="ml:*", count=1000):
                client.delete(key)
        except FAILURES as exc:
            raise StorageError("rate-limit storage failed", details=type(exc).__name__) from exc

    def close(self) -> None:
        """Close the cluster client's connections."""
        if self._client is not None:
            self._client.close()
