"""The Redis connection of the store: a pool, the calls' thread hop, errors, durability.

redis-py's asyncio client does not run under trio, so the store uses the synchronous client and
runs each call in a worker thread (``trio.to_thread.run_sync``). A CapacityLimiter as large as
the connection pool bounds those threads, so a thread never waits for a connection and the trio
loop never waits at all. Threads rather than a trio-native client: redis-py is the client Redis
itself maintains (Lua script objects that reload on NOSCRIPT, URL parsing, TLS, Sentinel), and a
call costs one thread hop, small beside its network round trip.

The URL carries the password, so it never enters a message: errors and logs name the server by
``host:port/db`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis
import trio
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from tamma_trio.errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

POOL_SIZE = 12
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0
# A few quick retries reconnect pooled connections that a Redis restart closed; more would only
# delay the 503 a caller should get while Redis is down.
RETRIES = 3


def connect(url: str) -> redis.Redis:
    """A client over a blocking pool of POOL_SIZE connections (nothing is opened yet)."""
    try:
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_SIZE,
            timeout=SOCKET_TIMEOUT,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), RETRIES),
        )
    except ValueError:
        raise StoreError(
            "service.queue.redis.url is not a redis://, rediss:// or unix:// URL"
        ) from None
    return redis.Redis(connection_pool=pool)


def describe(client: redis.Redis) -> str:
    """``redis 127.0.0.1:6379/0``: where the store is, without credentials."""
    kwargs = client.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        return f"redis unix:{kwargs['path']}/{db}"
    return f"redis {kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


class Calls:
    """Runs blocking client calls in threads, turning redis-py's errors into StoreError."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.limiter = trio.CapacityLimiter(POOL_SIZE)

    async def run(self, call: Callable[[], T]) -> T:
        # Not abandoned on cancel: a cancelled caller still receives what the call did (a claim
        # must reach its worker), and is cancelled at its next checkpoint.
        return await trio.to_thread.run_sync(self._guarded, call, limiter=self.limiter)

    def _guarded(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except redis.RedisError as exc:
            raise StoreError(f"{self.where}: {_reason(exc)}") from None


def _reason(exc: redis.RedisError) -> str:
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"unreachable ({exc})"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Durability:
    """The server's persistence settings and what they promise for an acknowledged task."""

    appendonly: bool
    appendfsync: str | None
    # Anything but noeviction lets Redis drop keys, tasks included, when it runs out of memory.
    maxmemory_policy: str | None = None

    def promise(self) -> str:
        if not self.appendonly:
            return (
                "appendonly no: tasks acknowledged since the last RDB snapshot (if any) are "
                "lost when Redis stops uncleanly"
            )
        if self.appendfsync == "always":
            return "appendonly yes, appendfsync always: no acknowledged task is lost on power loss"
        if self.appendfsync == "everysec":
            return (
                "appendonly yes, appendfsync everysec: up to about one second of acknowledged "
                "tasks can be lost on power loss, none on a Redis crash"
            )
        return (
            f"appendonly yes, appendfsync {self.appendfsync or 'unknown'}: the kernel decides "
            "when writes reach the disk; acknowledged tasks can be lost on power loss"
        )


def read_durability(client: redis.Redis) -> Durability:
    """CONFIG GET where allowed; managed servers often refuse CONFIG, INFO still tells AOF."""
    try:
        config = cast(dict[str, Any], client.config_get("append*", "maxmemory-policy"))
    except redis.ResponseError:
        info: dict[str, Any] = client.info("persistence")
        return Durability(bool(int(info.get("aof_enabled", 0))), None)
    return Durability(
        config.get("appendonly") == "yes",
        config.get("appendfsync"),
        config.get("maxmemory-policy"),
    )


def check_durability(durability: Durability, where: str, *, require_aof: bool) -> None:
    """Log the promise; refuse to start without AOF when the operator asked for it."""
    if require_aof and not durability.appendonly:
        raise StoreError(
            f"{where} runs with appendonly no, and service.queue.redis.require_aof is set: "
            "enable AOF on the server (appendonly yes) or unset require_aof"
        )
    level = logging.INFO if durability.appendonly else logging.WARNING
    log.log(level, "%s durability: %s", where, durability.promise())
    policy = durability.maxmemory_policy
    if policy not in (None, "noeviction"):
        log.warning(
            "%s has maxmemory-policy %s: when it runs out of memory it may evict tasks; "
            "set maxmemory-policy noeviction",
            where,
            policy,
        )
