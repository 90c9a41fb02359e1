"""Task stores: pick the backend named in config.

``async with open_store(queue) as store:`` opens the configured store inside the caller's trio
run and closes it on the way out (trio's ``open_*`` convention). The daemon, and only the
daemon, also calls ``lock_for_daemon()`` on a single-daemon store (SQLite) before entering it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tamma_trio.config import QueueConfig
from tamma_trio.errors import StoreError
from tamma_trio.store.base import DEFAULT_LEASE_SECONDS, TaskStore, WallClock

if TYPE_CHECKING:
    from tamma_trio.store.memory import MemoryStore
    from tamma_trio.store.sqlite import SqliteStore

__all__ = ["MemoryStore", "SqliteStore", "TaskStore", "open_store"]


def __getattr__(name: str) -> object:
    """The backends on first use: a CLI command that reads SQLite never loads the others."""
    if name == "MemoryStore":
        from tamma_trio.store.memory import MemoryStore

        return MemoryStore
    if name == "SqliteStore":
        from tamma_trio.store.sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(
    queue: QueueConfig,
    *,
    clock: WallClock = time.time,
    boot_id: str | None = None,
    inline: bool = False,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> TaskStore:
    """The configured store, opened by ``async with``. ``inline`` runs SQLite on the trio
    thread (tests); ``lease_seconds`` is the lease the SQS queues' visibility timeout must
    match."""
    if queue.type == "memory":
        from tamma_trio.store.memory import MemoryStore

        return MemoryStore(clock=clock, boot_id=boot_id)
    if queue.type == "sqlite":
        from tamma_trio.store.sqlite import SqliteStore

        return SqliteStore(
            queue.sqlite.path,
            synchronous=queue.sqlite.synchronous,
            clock=clock,
            boot_id=boot_id,
            inline=inline,
        )
    if queue.type == "redis":
        # Imported here: a SQLite daemon never loads redis-py.
        from tamma_trio.store.redis_store import RedisStore

        return RedisStore(
            queue.redis.url.get_secret_value(),
            prefix=queue.redis.prefix,
            require_aof=queue.redis.require_aof,
            clock=clock,
            boot_id=boot_id,
        )
    if queue.type == "sqs":
        # Imported here: only an AWS daemon loads boto3.
        from tamma_trio.store.aws import SqsStore

        return SqsStore(queue.sqs, lease_seconds=lease_seconds, clock=clock, boot_id=boot_id)
    raise StoreError(f"the {queue.type} queue backend is not available yet")
