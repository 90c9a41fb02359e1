"""Retention: the daemon prunes finished tasks older than ``[retention]`` in small batches.

Without it the store grows by every task forever. Completed and cancelled tasks go after
``days``; failed ones after ``failed_days``, since they wait for a human. The service event
stream and the webhook outbox follow the same two periods: an event and its delivered
notifications after ``days``, a dead notification (one nobody heard) after ``failed_days``,
a pending one never, since the sender still owes it. Each batch is one
short transaction, with a checkpoint between batches, so intake and claims interleave with a
large first sweep instead of waiting behind it. A sweep that fails (the store is busy or down)
is logged and tried again at the next interval: housekeeping never stops the daemon.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio

from tamma_trio.config import RetentionConfig
from tamma_trio.models import TaskStatus
from tamma_trio.service_events import PrunedEvents
from tamma_trio.store.base import TaskStore, WallClock

log = logging.getLogger(__name__)

DAY = 86_400.0


def cutoffs(config: RetentionConfig, now: float) -> list[tuple[tuple[TaskStatus, ...], float]]:
    """(statuses, finished before) for each retention period."""
    return [
        ((TaskStatus.COMPLETED, TaskStatus.CANCELLED), now - config.days * DAY),
        ((TaskStatus.FAILED,), now - config.failed_days * DAY),
    ]


async def prune_all(
    store: TaskStore,
    statuses: Sequence[TaskStatus],
    finished_before: float,
    batch_size: int,
    *,
    dry_run: bool = False,
) -> int:
    """Prune every matching task, ``batch_size`` per call; how many there were."""
    if dry_run:  # nothing is deleted, so the batches would repeat: count in one call
        return len(await store.prune(finished_before, statuses, 10**9, dry_run=True))
    total = 0
    while True:
        ids = await store.prune(finished_before, statuses, batch_size)
        total += len(ids)
        if len(ids) < batch_size:
            return total
        await trio.lowlevel.checkpoint()


async def prune_events(
    store: TaskStore, before: float, dead_before: float, batch_size: int, *, dry_run: bool = False
) -> PrunedEvents:
    """Prune the event stream and the outbox, ``batch_size`` of each per call; the totals."""
    if dry_run:
        return await store.prune_events(before, dead_before, 10**9, dry_run=True)
    events = notifications = 0
    while True:
        got = await store.prune_events(before, dead_before, batch_size)
        events += got.events
        notifications += got.notifications
        if max(got) < batch_size:
            return PrunedEvents(events, notifications)
        await trio.lowlevel.checkpoint()


class Retention:
    """The daemon's sweeper: one sweep at start, then one every ``interval`` seconds.

    ``after_prune`` removes what lived beside the pruned tasks (the engine's kept worktrees
    and logs); it runs after every sweep, so work left by an earlier failed sweep goes too.
    """

    def __init__(
        self,
        store: TaskStore,
        config: RetentionConfig,
        wall: WallClock,
        after_prune: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.wall = wall
        self.after_prune = after_prune
        self.pruned = 0
        self.pruned_events = PrunedEvents(0, 0)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        deadline = trio.current_time()
        while True:
            await self.sweep()
            deadline += self.config.interval
            await trio.sleep_until(deadline)

    async def sweep(self) -> int:
        """Prune what is due; the number of tasks pruned (0 when the store failed)."""
        try:
            swept = await self._sweep_tasks()
            outbox = await self._sweep_events()
            if self.after_prune is not None:
                await self.after_prune()
        except Exception as exc:
            log.warning(
                "retention: pruning failed, trying again in %g s: %s", self.config.interval, exc
            )
            return 0
        if any(outbox):
            log.info(
                "retention: pruned %d service event(s) and %d delivered or dead notification(s)",
                *outbox,
            )
        return swept

    async def _sweep_tasks(self) -> int:
        swept = 0
        for statuses, before in cutoffs(self.config, self.wall()):
            swept += await prune_all(self.store, statuses, before, self.config.batch_size)
        if swept:
            self.pruned += swept
            log.info(
                "retention: pruned %d finished task(s) (kept %g days, failed %g days)",
                swept,
                self.config.days,
                self.config.failed_days,
            )
        return swept

    async def _sweep_events(self) -> PrunedEvents:
        now = self.wall()
        cuts = (now - self.config.days * DAY, now - self.config.failed_days * DAY)
        outbox = await prune_events(self.store, *cuts, self.config.batch_size)
        self.pruned_events = PrunedEvents(
            self.pruned_events.events + outbox.events,
            self.pruned_events.notifications + outbox.notifications,
        )
        return outbox
