"""Gives back tasks whose lease expired while the daemon runs, so nothing waits for a restart.

A lease stops being renewed when its holder hangs, loses the store (a full disk, a database
locked for longer than a lease), or dies on another host of a shared store. Without this loop
such a task stays in_progress until the next start-up's orphan recovery, which on Redis or SQS,
where other daemons keep running, may never come. The store does the work atomically
(``TaskStore.reclaim_expired``): the task is queued again with its attempt refunded and an
interruption counted, and the old holder's token is dead, so its late result is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from tamma_trio.models import Task
from tamma_trio.periodic import every
from tamma_trio.store.base import TaskStore

log = logging.getLogger(__name__)

OnReclaimed = Callable[[list[Task]], Awaitable[None]]


def reclaim_interval(lease_seconds: float) -> float:
    """Half a lease: a task whose holder went quiet is back in the queue at most 1.5 leases
    after its last renewal, and the store is asked twice a lease, not on every poll."""
    return lease_seconds / 2


class LeaseReclaimer:
    """Calls ``reclaim_expired`` every ``interval`` and hands what it reclaimed to the service."""

    def __init__(self, store: TaskStore, interval: float, on_reclaimed: OnReclaimed) -> None:
        if interval <= 0:
            raise ValueError(f"the reclaim interval must be positive, got {interval!r}")
        self.store = store
        self.interval = interval
        self.on_reclaimed = on_reclaimed

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await every(self.interval, self.reclaim)

    async def reclaim(self) -> list[Task]:
        """One pass; a store error is logged and the next pass tries again."""
        try:
            tasks = await self.store.reclaim_expired()
        except Exception as exc:
            log.warning("reclaiming expired leases failed: %s", exc)
            return []
        if tasks:
            ids = ", ".join(str(task.id) for task in tasks)
            log.warning("%d task(s) had an expired lease and were reclaimed: %s", len(tasks), ids)
            await self.on_reclaimed(tasks)
        return tasks
