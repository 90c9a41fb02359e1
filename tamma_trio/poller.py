"""Feeds the workers: claims due tasks up to free capacity, when woken or every poll_interval.

The wake-up is an AsyncValue generation counter (trio-util): a wake that happens while the poller
is busy claiming is not lost, because the poller compares against the value it saw *before* it
claimed. An in-process enqueue (API, webhook, engine) wakes it at once; poll_interval only bounds
how late a task written by another process (the CLI) is seen. The retry timer wakes it when the
earliest backoff expires, so a retry is a row with a not_before, never an in-memory timer.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable
from functools import partial

import trio
from trio_util import AsyncValue

from tamma_trio.models import Task
from tamma_trio.store.base import TaskStore, WallClock

log = logging.getLogger(__name__)

StartTask = Callable[[Task, object], None]
# Told after every claim: None when it worked, else the error (for /ready).
ClaimReport = Callable[[str | None], None]

# A deadline computed from a wall time can land a hair before it after float rounding; firing
# this much later makes sure the store, reading the same clock, sees the task as due.
DUE_MARGIN = 0.001
# While the earliest queued task is already due but not claimable (capacity or its subject is
# busy), later backoffs are hidden behind it; look again this often.
STALE_RECHECK = 1.0
# After a failed claim (the store is unreachable) wait this long, doubling per failure up to
# the cap; wake-ups do not shorten the wait, since each would only fail again.
CLAIM_BACKOFF = 0.25
CLAIM_BACKOFF_CAP = 10.0


def claim_backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` claims in a row have failed (0 after a success)."""
    if failures <= 0:
        return 0.0
    return float(min(CLAIM_BACKOFF * 2 ** (failures - 1), CLAIM_BACKOFF_CAP))


class Poller:
    """Claims in one batch as many due tasks as there are free worker slots."""

    def __init__(
        self,
        store: TaskStore,
        limiter: trio.CapacityLimiter,
        *,
        poll_interval: float,
        lease_seconds: float,
        on_claim: ClaimReport | None = None,
    ) -> None:
        self.store = store
        self.on_claim = on_claim
        self.limiter = limiter
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.generation = AsyncValue(0)
        self.failures = 0  # claims failed in a row

    def wake(self) -> None:
        """Claim now: something was enqueued in-process, a slot freed, or a backoff expired."""
        self.generation.value += 1

    async def run(
        self, start: StartTask, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Loop forever; ``start(task, slot)`` must hand the task to a worker without blocking."""
        task_status.started()
        while True:
            seen = self.generation.value
            await self.claim_due(start)
            if self.failures:
                await trio.sleep(claim_backoff(self.failures))
                continue
            with trio.move_on_at(trio.current_time() + self.poll_interval):
                await self.generation.wait_value(partial(operator.ne, seen))

    async def claim_due(self, start: StartTask) -> None:
        """Claim and start tasks until a claim comes back short (nothing more is due)."""
        while True:
            slots = await self._take_slots()
            try:
                # Shielded: a claimed task whose result a cancel threw away would stay
                # in_progress until its lease expired (a thread's result reaches a cancelled
                # caller only at its next checkpoint).
                with trio.CancelScope(shield=True):
                    tasks = await self.store.claim(len(slots), self.lease_seconds)
            except Exception as exc:
                self._give_back(slots)
                self._claim_failed(exc)
                self._report(str(exc))
                return
            if self.failures:
                log.info("claiming works again after %d failed attempt(s)", self.failures)
                self.failures = 0
            self._give_back(slots[len(tasks) :])
            self._report(None)
            # No checkpoint from the claim to here: every claimed task reaches a worker.
            for task, slot in zip(tasks, slots, strict=False):
                start(task, slot)
            if len(tasks) < len(slots):
                return

    def _report(self, error: str | None) -> None:
        if self.on_claim is not None:
            self.on_claim(error)

    def _claim_failed(self, exc: Exception) -> None:
        """Count the failure; log the first of a run and then every tenth, not each retry."""
        self.failures += 1
        if self.failures == 1 or self.failures % 10 == 0:
            wait = claim_backoff(self.failures)
            log.warning(
                "claiming tasks failed (%d in a row, next try in %.2f s): %s",
                self.failures,
                wait,
                exc,
            )

    async def _take_slots(self) -> list[object]:
        """One capacity token per task to claim: wait for the first, take every free one."""
        first = object()
        await self.limiter.acquire_on_behalf_of(first)
        # Workers finish in bursts (a group commit wakes them together): let the rest of the
        # burst free its slots, so one claim fetches many tasks instead of one each.
        await trio.lowlevel.checkpoint()
        slots = [first]
        while self.limiter.available_tokens > 0:
            slot = object()
            self.limiter.acquire_on_behalf_of_nowait(slot)
            slots.append(slot)
        return slots

    def _give_back(self, slots: list[object]) -> None:
        for slot in slots:
            self.limiter.release_on_behalf_of(slot)


class RetryTimer:
    """Sleeps until the earliest not_before among queued tasks, then wakes the poller."""

    def __init__(self, store: TaskStore, wall: WallClock, wake: Callable[[], None]) -> None:
        self.store = store
        self.wall = wall
        self.wake = wake
        self.changed = AsyncValue(0)
        self._target: float | None = None

    def schedule(self, not_before: float) -> None:
        """A task was requeued for ``not_before``: look again if that is earlier than planned."""
        if self._target is None or not_before < self._target:
            self.changed.value += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            seen = self.changed.value
            deadline = await self._next_deadline()
            with trio.move_on_at(deadline) as timer:
                await self.changed.wait_value(partial(operator.ne, seen))
            if timer.cancelled_caught and self._target is not None:
                self._target = None
                self.wake()

    async def _next_deadline(self) -> float:
        """The trio time to wake at (absolute, so a past due time never makes a negative sleep)."""
        try:
            due = await self.store.next_due()
        except Exception as exc:
            log.warning("reading the next due time failed: %s", exc)
            self._target = None
            return trio.current_time() + STALE_RECHECK
        now = self.wall()
        if due is None:
            self._target = None
            return math.inf
        if due <= now:
            self._target = None
            return trio.current_time() + STALE_RECHECK
        self._target = due
        return trio.current_time() + (due - now) + DUE_MARGIN
