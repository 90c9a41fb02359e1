"""The SqsStore's reads of tasks, for SqsStore to inherit: each checks the store is open and
asks reads.py, or the writer for one task's record."""

from __future__ import annotations

from tamma_trio.models import (
    QueueStats,
    Task,
    TaskEvent,
    TaskPriority,
    TaskStatus,
    TaskType,
    ThroughputBucket,
)
from tamma_trio.store import lifecycle
from tamma_trio.store.aws import reads
from tamma_trio.store.aws.tables import Tables
from tamma_trio.store.aws.writes import Writer
from tamma_trio.store.base import WallClock

# Counting reads the keys-only index of every task kept (cost grows with the table), so a store
# answers stats from a count at most this old instead of counting on each call.
STATS_MAX_AGE = 5.0


class SqsReadMethods:
    """Task reads over the store's tables (set by SqsStore.open)."""

    tables: Tables
    _writer: Writer
    _clock: WallClock
    _stats: tuple[float, QueueStats] | None

    async def _enter(self) -> None:
        raise NotImplementedError

    # --- reads ----------------------------------------------------------------------------
    async def tasks_of_subject(self, subject: str, limit: int = 20) -> list[Task]:
        await self._enter()
        return await reads.tasks_of_subject(self.tables, subject, limit)

    async def queued_by_priority(self) -> dict[TaskPriority, int]:
        await self._enter()
        return await reads.queued_by_priority(self.tables)

    async def get(self, task_id: int) -> Task:
        await self._enter()
        return (await self._writer.read(task_id)).task

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
        await self._enter()
        query = reads.TaskQuery(status, type, repository, text, before)
        return await reads.list_tasks(self.tables, query, limit, offset)

    async def events(self, task_id: int) -> list[TaskEvent]:
        await self._enter()
        return (await self._writer.read(task_id)).events()

    async def stats(self) -> QueueStats:
        """Counts at most STATS_MAX_AGE old: every daemon asks each second for /health."""
        await self._enter()
        now = self._clock()
        if self._stats is None or now - self._stats[0] >= STATS_MAX_AGE:
            self._stats = (now, await reads.stats(self.tables, now))
        return self._stats[1]

    async def throughput(self, since: float, bucket_seconds: int) -> list[ThroughputBucket]:
        await self._enter()
        return await reads.throughput(self.tables, since, bucket_seconds)

    async def next_due(self) -> float | None:
        await self._enter()
        return await reads.next_due(self.tables)
