"""Plain helpers of the task-store tests: the hand-driven clock, backend factory, shortcuts."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamma_trio.config import SqsQueueConfig
from tamma_trio.models import NewTask, Task
from tamma_trio.store.aws import SqsStore
from tamma_trio.store.base import DEFAULT_QUARANTINE_AFTER, TaskStore, WallClock
from tamma_trio.store.memory import MemoryStore
from tamma_trio.store.memory_reads import MemoryState
from tamma_trio.store.redis_store import RedisStore
from tamma_trio.store.sqlite import SqliteStore

# 2026-01-01T00:00:00Z: a round start for the hand-driven wall clock.
START_WALL = 1_767_225_600.0

# One entry per backend of the contract suite; each is built by
# StoreFactory below, and the conftest's store_factory fixture supplies what it needs.
STORE_BACKENDS = ("memory", "sqlite-inline", "sqlite-thread", "redis", "sqs")
# Backends several daemons share (``single_daemon`` False): no lock, no orphan recovery.
SHARED_BACKENDS = ("redis", "sqs")
# The backends one daemon owns at a time: orphan recovery applies.
SINGLE_DAEMON_BACKENDS = tuple(b for b in STORE_BACKENDS if b not in SHARED_BACKENDS)

# Contract tests a backend cannot pass by its nature, with the reason. They still run, as
# strict xfails: the suite reports each difference, and fails if one stops being true.
CAPABILITY_DIFFERENCES = {
    ("sqs", "test_claim_waits_for_not_before"): (
        "SQS hides a retried task's message on AWS's clock, which the store's injected wall "
        "clock cannot move: the hand-driven clock reaches not_before while the message is still "
        "invisible (test_aws_store.py checks the same rule on the real clock)"
    ),
}

# Contract tests too slow for a backend's local stand-in, with the reason: skipped, and the
# rule they check is tested at a smaller size where the reason says.
TOO_SLOW_ON_STAND_IN = {
    ("sqs", "test_text_search_reads_only_the_newest_window"): (
        "writing 10,000 tasks through moto takes longer than the 60 s test timeout; "
        "test_aws_store.py checks the same window rule with a window of 5"
    ),
}

TaskBuilder = Callable[..., NewTask]


class FakeWall:
    """A wall clock the test moves by hand: deterministic times on every backend, any thread."""

    def __init__(self, start: float = START_WALL) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class StoreFactory:
    """Builds stores of one backend that share one body of data (one file, one MemoryState).

    A second store from the same factory is what a restarted daemon, or the CLI beside a running
    daemon, sees: the same tasks under a different boot id.
    """

    backend: str
    path: Path
    memory: MemoryState = field(default_factory=MemoryState)
    redis_url: str = ""
    redis_prefix: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex}")
    aws: SqsQueueConfig | None = None  # the sqs backend's queues and tables (moto)

    def __call__(
        self,
        *,
        clock: WallClock,
        boot_id: str | None = None,
        quarantine_after: int = DEFAULT_QUARANTINE_AFTER,
    ) -> TaskStore:
        options: dict[str, Any] = {
            "clock": clock,
            "boot_id": boot_id,
            "quarantine_after": quarantine_after,
        }
        if self.backend == "memory":
            return MemoryStore(state=self.memory, **options)
        if self.backend == "redis":
            return RedisStore(self.redis_url, prefix=self.redis_prefix, **options)
        if self.backend == "sqs":
            assert self.aws is not None
            return SqsStore(self.aws, **options)
        inline = self.backend == "sqlite-inline"
        return SqliteStore(self.path, inline=inline, **options)


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


async def claim_one(store: TaskStore) -> Task:
    tasks = await store.claim(1)
    assert len(tasks) == 1
    return tasks[0]


async def kinds(store: TaskStore, task_id: int) -> list[str]:
    return [event.kind for event in await store.events(task_id)]
