"""The daemon's count of tasks the CLI stored, for the intake counter by source.

`tamma-trio tasks add` (and `tasks approve`) write the store themselves and exit: no daemon
sees those tasks arrive. So a daemon counts such a task when it claims it for the first time,
read from the task's trail: enqueued by "cli" and claimed once so far, so a retried or requeued
task is not counted again, and with several daemons each task is counted by the one that
claimed it first. A task the CLI added but nobody claimed (cancelled first) is not counted.
Trails are read in the background, off the claim path, and only for first attempts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import trio

from tamma_trio.models import Task, TaskEvent
from tamma_trio.store.base import TaskStore

log = logging.getLogger(__name__)

CLI = "cli"


def first_claim_of_a_cli_task(trail: Sequence[TaskEvent]) -> bool:
    enqueued = next((event for event in trail if event.kind == "enqueued"), None)
    claims = sum(1 for event in trail if event.kind == "claimed")
    return enqueued is not None and enqueued.actor == CLI and claims == 1


class CliIntakeTally:
    def __init__(self, store: TaskStore, counted: Callable[[str, int], None]) -> None:
        self.store = store
        self.counted = counted
        # Unbounded: ``claimed`` runs on the claim path and must never wait; one small int per
        # first attempt, drained as fast as the store answers.
        self._send, self._receive = trio.open_memory_channel[int](math.inf)

    def claimed(self, task: Task) -> None:
        """Called for every task handed to a worker; only first attempts are looked at."""
        if task.attempts == 1:
            self._send.send_nowait(task.id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for task_id in self._receive:
            await self.check(task_id)

    async def check(self, task_id: int) -> None:
        try:
            trail = await self.store.events(task_id)
        except Exception as exc:  # pruned or cancelled meanwhile, or the store is busy
            log.debug("intake count: cannot read the trail of task %d: %s", task_id, exc)
            return
        if first_claim_of_a_cli_task(trail):
            self.counted(CLI, 1)
