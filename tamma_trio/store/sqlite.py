"""The SQLite TaskStore: the default, durable backend of a single-host daemon.

One file holds the tasks (sqlite_schema.py), in WAL mode so the CLI can read and write while
the daemon runs, with ``synchronous=FULL`` by default so an acknowledged task survives a power
loss. Each call is a plain function of the connection (sqlite_ops.py) handed to a runner
(sqlite_runner.py): a writer thread with group commit in production, or inline on the trio
thread for MockClock tests. In production reads go to reader threads on connections of their
own (sqlite_readers.py), so no read waits behind a write batch. Timestamps come from the
injected wall clock, read on the trio thread when the call is made.

Two daemons on one file would run every task twice, so the daemon (never the CLI) calls
``lock_for_daemon()``, an exclusive flock on ``<path>.lock``, released by ``aclose()``. A locked
store also checks the whole file at ``open()`` (PRAGMA quick_check): the daemon owns the file for
hours and should learn of corruption at start, while a CLI call should not pay for it.

A caller cancelled while its call is queued still gets the call's result, and Cancelled at its
next checkpoint (see sqlite_runner.py): a claimed task is never lost on its way to the poller.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from tamma_trio.delivery import Delivery, DeliveryRecord
from tamma_trio.models import (
    NewTask,
    QueueStats,
    Task,
    TaskEvent,
    TaskPriority,
    TaskStatus,
    TaskType,
    ThroughputBucket,
)
from tamma_trio.resource import Resource
from tamma_trio.service_events import (
    NewServiceEvent,
    Notification,
    NotificationStatus,
    PrunedEvents,
    ServiceEvent,
)
from tamma_trio.store import (
    lifecycle,
    sqlite_deliveries,
    sqlite_events,
    sqlite_housekeeping,
    sqlite_ops,
    sqlite_queries,
)
from tamma_trio.store.base import DEFAULT_LEASE_SECONDS, DEFAULT_QUARANTINE_AFTER, WallClock
from tamma_trio.store.lifecycle import EventSpec
from tamma_trio.store.sqlite_lock import take_daemon_lock
from tamma_trio.store.sqlite_readers import ReaderThreads
from tamma_trio.store.sqlite_rows import (
    decode_text,
    dumps,
    event_from_row,
    event_row,
    new_task_row,
    task_from_row,
)
from tamma_trio.store.sqlite_runner import (
    MAX_QUEUED_WRITES,
    InlineRunner,
    Runner,
    WriterThread,
    bind,
)
from tamma_trio.store.sqlite_schema import Synchronous, open_database, open_reader

P = ParamSpec("P")
T = TypeVar("T")


class SqliteStore(Resource):
    """TaskStore in one SQLite file (see the module docstring)."""

    single_daemon = True

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "FULL",
        clock: WallClock = time.time,
        boot_id: str | None = None,
        inline: bool = False,
        quarantine_after: int = DEFAULT_QUARANTINE_AFTER,
        busy_timeout: float = 5.0,
        max_queued_writes: int = MAX_QUEUED_WRITES,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = Path(path)
        self.boot_id = boot_id or lifecycle.new_boot_id()
        self.synchronous = synchronous
        self._clock = clock
        self._quarantine_after = quarantine_after
        self._busy_timeout = busy_timeout
        where = str(self.path)
        self._runner: Runner = (
            InlineRunner(where) if inline else WriterThread(where, busy_timeout, max_queued_writes)
        )
        # Inline (MockClock tests): reads run on the one connection, on the trio thread.
        self._readers = None if inline else ReaderThreads(where)
        self._lock_fd: int | None = None

    # --- life ------------------------------------------------------------------------------
    async def _open(self) -> None:
        await self._runner.start(self._connect)
        if self._readers is not None:
            await self._readers.start(self._connect_reader)

    def _connect(self) -> sqlite3.Connection:
        """Runs on the runner's thread; rows written as invalid UTF-8 decode as UndecodableText
        instead of failing the whole query they are part of."""
        verify = self._lock_fd is not None
        conn = open_database(self.path, self.synchronous, self._busy_timeout, verify)
        conn.text_factory = decode_text
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        conn = open_reader(self.path, self._busy_timeout)
        conn.text_factory = decode_text
        return conn

    async def aclose(self) -> None:
        try:
            if self._readers is not None:
                await self._readers.aclose()  # first: the writer's close checkpoints the WAL
            await self._runner.aclose()
        finally:
            self._unlock()

    async def ping(self) -> None:
        """The file answers, and writes have not been failing (full disk, locked database)."""
        await self._read(sqlite_queries.select_one)
        self._runner.health.check()

    def lock_for_daemon(self) -> None:
        """Take ``<path>.lock`` for this process, or StoreLockedError if a daemon holds it."""
        self._lock_fd = take_daemon_lock(self.path, self.boot_id)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    @property
    def commit_counts(self) -> tuple[int, int]:
        """(transactions, operations) run so far; their ratio is the group-commit factor."""
        return self._runner.batches, self._runner.operations

    async def describe(self) -> dict[str, Any]:
        """The file's settings as the writing connection sees them (diagnostics and tests)."""
        return await self._runner.run(sqlite_queries.describe, write=False)

    # --- intake ---------------------------------------------------------------------------
    async def add(self, new: NewTask) -> tuple[Task, bool]:
        return (await self.add_many([new]))[0]

    async def add_many(self, news: Sequence[NewTask]) -> list[tuple[Task, bool]]:
        now = self._clock()
        rows = await self._intake(sqlite_ops.add_tasks, [new_task_row(new, now) for new in news])
        return [(task_from_row(row), created) for row, created in rows]

    async def add_delivery(
        self, record: DeliveryRecord, news: Sequence[NewTask]
    ) -> tuple[Delivery, list[tuple[Task, bool]]]:
        now = self._clock()
        rows = [new_task_row(new, now) for new in news]
        row, added = await self._intake(sqlite_deliveries.add_delivery, record, rows, now)
        tasks = [(task_from_row(task_row), created) for task_row, created in added]
        return sqlite_deliveries.delivery_from_row(row), tasks

    # --- reads ----------------------------------------------------------------------------
    async def get_delivery(self, forge: str, delivery_id: str) -> Delivery | None:
        row = await self._read(sqlite_deliveries.get_delivery, forge, delivery_id)
        return None if row is None else sqlite_deliveries.delivery_from_row(row)

    async def list_deliveries(self, *, limit: int = 50, offset: int = 0) -> list[Delivery]:
        lifecycle.check_page(limit, offset)
        rows = await self._read(sqlite_deliveries.list_deliveries, limit, offset)
        return [sqlite_deliveries.delivery_from_row(row) for row in rows]

    async def prune_deliveries(self, before: float) -> int:
        return await self._write(sqlite_deliveries.prune_deliveries, before)

    async def tasks_of_subject(self, subject: str, limit: int = 20) -> list[Task]:
        rows = await self._read(sqlite_deliveries.tasks_of_subject, subject, limit)
        return [task_from_row(row) for row in rows]

    async def get(self, task_id: int) -> Task:
        return task_from_row(await self._read(sqlite_ops.get_task, task_id))

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        type: TaskType | None = None,
        repository: str | None = None,
        text: str | None = None,
        before: int | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Task]:
        lifecycle.check_page(limit, offset)
        rows = await self._read(
            sqlite_queries.list_tasks, status, type, repository, text, before, limit, offset
        )
        return [task_from_row(row) for row in rows]

    async def throughput(self, since: float, bucket_seconds: int) -> list[ThroughputBucket]:
        rows = await self._read(sqlite_queries.throughput, since, bucket_seconds)
        counts: dict[int, dict[str, int]] = {}
        for index, status, count in rows:
            counts.setdefault(index, {})[status] = count
        return [
            ThroughputBucket(start=lifecycle.utc(since + index * bucket_seconds), **counts[index])
            for index in sorted(counts)
        ]

    async def events(self, task_id: int) -> list[TaskEvent]:
        return [event_from_row(row) for row in await self._read(sqlite_ops.list_events, task_id)]

    async def stats(self) -> QueueStats:
        counts, oldest = await self._read(sqlite_ops.queue_stats)
        return QueueStats(
            by_status={status: counts.get(status.value, 0) for status in TaskStatus},
            queue_depth=counts.get(TaskStatus.QUEUED.value, 0),
            oldest_queued_age=lifecycle.oldest_age(self._clock(), oldest),
        )

    async def queued_by_priority(self) -> dict[TaskPriority, int]:
        counts = dict(await self._read(sqlite_queries.queued_by_priority))
        return {priority: counts.get(int(priority), 0) for priority in TaskPriority}

    async def next_due(self) -> float | None:
        return await self._read(sqlite_ops.next_due)

    # --- the worker's side ----------------------------------------------------------------
    async def claim(self, limit: int, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> list[Task]:
        now = self._clock()
        expires = lifecycle.lease_expiry(now, lease_seconds)
        rows = await self._write(sqlite_ops.claim, now, limit, expires, self.boot_id)
        return [task_from_row(row) for row in rows]

    async def extend_leases(self, tokens: Sequence[str], lease_seconds: float) -> set[str]:
        expires = lifecycle.lease_expiry(self._clock(), lease_seconds)
        return await self._write(sqlite_ops.extend_leases, list(tokens), expires)

    async def save_progress(self, task_id: int, token: str, progress: dict[str, Any]) -> None:
        await self._write(sqlite_ops.save_progress, task_id, token, dumps(progress))

    async def record_event(
        self, task_id: int, kind: str, detail: dict[str, Any], actor: str = "worker"
    ) -> None:
        event = event_row(self._clock(), EventSpec(kind, actor, None, detail))
        await self._write(sqlite_ops.record_event, task_id, event)

    async def complete(self, task_id: int, token: str, result: dict[str, Any]) -> None:
        now = self._clock()
        await self._write(sqlite_ops.complete, task_id, token, dumps(result), now)

    async def retry_later(
        self, task_id: int, token: str, error: str, not_before: float, *, defer: bool = False
    ) -> None:
        now = self._clock()
        ending = (error, not_before, defer)
        await self._write(sqlite_ops.retry_later, task_id, token, ending, now)

    async def fail(self, task_id: int, token: str, error: str) -> None:
        now = self._clock()
        await self._write(sqlite_ops.fail, task_id, token, error, now)

    async def release(self, task_id: int, token: str, reason: str) -> None:
        now = self._clock()
        await self._write(sqlite_ops.release, task_id, token, reason, now)

    async def recover_orphans(self) -> list[Task]:
        now = self._clock()
        rows = await self._write(
            sqlite_ops.recover_orphans, self.boot_id, now, self._quarantine_after
        )
        return [task_from_row(row) for row in rows]

    async def reclaim_expired(self) -> list[Task]:
        now = self._clock()
        rows = await self._write(sqlite_ops.reclaim_expired, now, self._quarantine_after)
        return [task_from_row(row) for row in rows]

    # --- operator actions -----------------------------------------------------------------
    async def cancel(self, task_id: int, actor: str = "cli") -> Task:
        now = self._clock()
        return task_from_row(await self._write(sqlite_ops.cancel, task_id, actor, now))

    async def retry(self, task_id: int, actor: str = "cli") -> Task:
        now = self._clock()
        return task_from_row(await self._write(sqlite_ops.retry, task_id, actor, now))

    # --- service events and their webhook outbox ------------------------------------------
    async def publish(self, event: NewServiceEvent, targets: Sequence[str] = ()) -> ServiceEvent:
        now = self._clock()
        row = (
            *(now, event.kind.value, event.task_id, event.task_type, event.repository),
            *(event.subject, event.reason, dumps(event.detail)),
        )
        event_id = await self._write(sqlite_events.publish, row, list(targets), now)
        return ServiceEvent(id=event_id, at=lifecycle.utc(now), **event.model_dump())

    async def service_events(self, *, after: int = 0, limit: int = 100) -> list[ServiceEvent]:
        rows = await self._read(sqlite_events.events_after, after, limit)
        return [sqlite_events.event_from_row(row) for row in rows]

    async def notifications(
        self, *, status: NotificationStatus | None = None, limit: int = 100
    ) -> list[Notification]:
        rows = await self._read(sqlite_events.select_notifications, status, limit)
        return [sqlite_events.notification_from_row(row) for row in rows]

    async def record_notification(
        self, delivery_id: int, *, error: str | None, next_attempt: float | None = None
    ) -> None:
        now = self._clock()
        await self._write(sqlite_events.record_notification, delivery_id, error, next_attempt, now)

    async def renotify(self, delivery_ids: Sequence[int] | None = None) -> int:
        ids = None if delivery_ids is None else list(delivery_ids)
        return await self._write(sqlite_events.renotify, ids, self._clock())

    # --- housekeeping ---------------------------------------------------------------------
    async def prune_events(
        self, before: float, dead_before: float, limit: int, *, dry_run: bool = False
    ) -> PrunedEvents:
        lifecycle.check_limit(limit)
        counts = await self._write(sqlite_events.prune_events, before, dead_before, limit, dry_run)
        return PrunedEvents(*counts)

    async def prune(
        self,
        finished_before: float,
        statuses: Collection[TaskStatus],
        limit: int,
        *,
        dry_run: bool = False,
    ) -> list[int]:
        wanted = lifecycle.check_prune(statuses, limit)
        return await self._write(sqlite_housekeeping.prune, finished_before, wanted, limit, dry_run)

    # --- internals ------------------------------------------------------------------------
    async def _write(
        self,
        function: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await self._runner.run(bind(function, *args, **kwargs), write=True)

    async def _read(
        self,
        function: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A read on a reader connection: it never waits behind the writer's batches."""
        operation = bind(function, *args, **kwargs)
        if self._readers is None:
            return await self._runner.run(operation, write=False)
        return await self._readers.run(operation)

    async def _intake(
        self,
        function: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A write from a door (API, webhook, CLI): refused with StoreBusyError while the
        writer's queue is full, before anything is queued."""
        return await self._runner.run(bind(function, *args, **kwargs), write=True, bounded=True)
