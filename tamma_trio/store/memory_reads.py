"""The MemoryStore's reads, and the state behind it, for MemoryStore to inherit.

Kept apart from memory.py, which holds the state changes: a read only looks at the state and
hands out copies, so a caller editing what it got never edits the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tamma_trio.delivery import Delivery
from tamma_trio.errors import TaskNotFoundError
from tamma_trio.models import (
    QueueStats,
    Task,
    TaskEvent,
    TaskPriority,
    TaskStatus,
    TaskType,
    ThroughputBucket,
)
from tamma_trio.store import lifecycle, memory_queries
from tamma_trio.store.base import WallClock
from tamma_trio.store.memory_events import MemoryOutbox


@dataclass
class MemoryState:
    """The data behind a MemoryStore; hand one to a second store to simulate a daemon restart."""

    tasks: dict[int, Task] = field(default_factory=dict)
    events: dict[int, list[TaskEvent]] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    deliveries: dict[tuple[str, str], Delivery] = field(default_factory=dict)
    last_task_id: int = 0
    last_delivery_id: int = 0
    last_event_id: int = 0
    outbox: MemoryOutbox = field(default_factory=MemoryOutbox)


class MemoryReadMethods:
    """The TaskStore reads over a MemoryState; every one checkpoints first, like the rest."""

    _clock: WallClock
    _state: MemoryState

    async def _enter(self) -> None:
        raise NotImplementedError

    # --- reads ----------------------------------------------------------------------------
    async def get_delivery(self, forge: str, delivery_id: str) -> Delivery | None:
        await self._enter()
        return self._state.deliveries.get((forge, delivery_id))

    async def list_deliveries(self, *, limit: int = 50, offset: int = 0) -> list[Delivery]:
        lifecycle.check_page(limit, offset)
        await self._enter()
        newest = sorted(self._state.deliveries.values(), key=lambda d: d.id, reverse=True)
        return newest[offset : offset + limit]

    async def tasks_of_subject(self, subject: str, limit: int = 20) -> list[Task]:
        await self._enter()
        found = [task for task in self._state.tasks.values() if task.subject == subject]
        return [copy_task(task) for task in sorted(found, key=lambda t: t.id, reverse=True)[:limit]]

    async def get(self, task_id: int) -> Task:
        await self._enter()
        return copy_task(self._task(task_id))

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
        matching = memory_queries.matching_tasks(
            self._state.tasks.values(),
            status=status,
            task_type=type,
            repository=repository,
            text=text,
            before=before,
        )
        return [copy_task(t) for t in matching[offset : offset + limit]]

    async def throughput(self, since: float, bucket_seconds: int) -> list[ThroughputBucket]:
        await self._enter()
        return memory_queries.throughput(self._state.tasks.values(), since, bucket_seconds)

    async def queued_by_priority(self) -> dict[TaskPriority, int]:
        await self._enter()
        return memory_queries.queued_by_priority(self._state.tasks.values())

    async def events(self, task_id: int) -> list[TaskEvent]:
        await self._enter()
        self._task(task_id)
        return [e.model_copy(deep=True) for e in self._state.events[task_id]]

    async def stats(self) -> QueueStats:
        await self._enter()
        by_status = dict.fromkeys(TaskStatus, 0)
        for task in self._state.tasks.values():
            by_status[task.status] += 1
        queued = self._with_status(TaskStatus.QUEUED)
        oldest = min(queued, key=lambda t: t.id).created_at.timestamp() if queued else None
        return QueueStats(
            by_status=by_status,
            queue_depth=by_status[TaskStatus.QUEUED],
            oldest_queued_age=lifecycle.oldest_age(self._clock(), oldest),
        )

    async def next_due(self) -> float | None:
        await self._enter()
        queued = self._with_status(TaskStatus.QUEUED)
        return min(t.not_before.timestamp() for t in queued) if queued else None

    # --- lookups the state changes share ---------------------------------------------------
    def _task(self, task_id: int) -> Task:
        try:
            return self._state.tasks[task_id]
        except KeyError:
            raise TaskNotFoundError(task_id) from None

    def _with_status(self, status: TaskStatus) -> list[Task]:
        return [t for t in self._state.tasks.values() if t.status is status]


def copy_task(task: Task) -> Task:
    """A deep copy, so a caller editing a payload dict never edits the store."""
    return task.model_copy(deep=True)
