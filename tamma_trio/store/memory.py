"""A TaskStore in process memory: the same contract as SQLite, with no threads and no I/O.

It is the store for logic tests under MockClock and for a throw-away daemon (`type = "memory"`);
nothing survives the process. Every method checkpoints first, like a real backend would, so a
cancelled caller changes nothing, and never checkpoints after its change, so a caller always
receives what it changed (see SqliteStore for why that matters to claim). The state changes
are here; the reads and the state itself are in memory_reads.py, the outbox in memory_events.py.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Collection, Sequence
from typing import Any

import trio

from tamma_trio.delivery import Delivery, DeliveryRecord
from tamma_trio.errors import StoreError
from tamma_trio.models import (
    NewTask,
    Task,
    TaskEvent,
    TaskStatus,
    check_transition,
)
from tamma_trio.resource import Resource
from tamma_trio.store import lifecycle
from tamma_trio.store.base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_QUARANTINE_AFTER,
    WallClock,
)
from tamma_trio.store.lifecycle import EventSpec
from tamma_trio.store.memory_events import MemoryOutbox, MemoryOutboxMethods
from tamma_trio.store.memory_reads import MemoryReadMethods, MemoryState, copy_task


class MemoryStore(MemoryReadMethods, MemoryOutboxMethods, Resource):
    """TaskStore over plain dicts (see the module docstring)."""

    single_daemon = True

    def __init__(
        self,
        *,
        clock: WallClock = time.time,
        boot_id: str | None = None,
        quarantine_after: int = DEFAULT_QUARANTINE_AFTER,
        state: MemoryState | None = None,
    ) -> None:
        self.boot_id = boot_id or lifecycle.new_boot_id()
        self._clock = clock
        self._quarantine_after = quarantine_after
        self._state = state if state is not None else MemoryState()
        self._opened = False

    async def _open(self) -> None:
        await trio.lowlevel.checkpoint()
        self._opened = True

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
        self._opened = False

    async def ping(self) -> None:
        await self._enter()

    def lock_for_daemon(self) -> None:
        """Nothing to lock: no other process can see this store."""

    # --- intake ---------------------------------------------------------------------------
    async def add(self, new: NewTask) -> tuple[Task, bool]:
        await self._enter()
        return self._add(new, self._clock())

    async def add_many(self, news: Sequence[NewTask]) -> list[tuple[Task, bool]]:
        await self._enter()
        now = self._clock()
        return [self._add(new, now) for new in news]

    async def add_delivery(
        self, record: DeliveryRecord, news: Sequence[NewTask]
    ) -> tuple[Delivery, list[tuple[Task, bool]]]:
        await self._enter()
        known = self._state.deliveries.get((record.forge, record.delivery_id))
        if known is not None:
            return known, []
        now = self._clock()
        added = [self._add(new, now) for new in news]
        self._state.last_delivery_id += 1
        delivery = Delivery(
            **record.model_dump(exclude={"task_ids"}),
            task_ids=(*record.task_ids, *(task.id for task, _ in added)),
            id=self._state.last_delivery_id,
            received_at=lifecycle.utc(now),
        )
        self._state.deliveries[(record.forge, record.delivery_id)] = delivery
        return delivery, added

    # --- the worker's side ----------------------------------------------------------------
    async def claim(self, limit: int, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> list[Task]:
        await self._enter()
        now = self._clock()
        expires = lifecycle.utc(lifecycle.lease_expiry(now, lease_seconds))
        claimed = []
        for task in self._due(now, limit):
            attempt = task.attempts + 1
            changes = {
                "status": TaskStatus.IN_PROGRESS,
                "attempts": attempt,
                "started_at": lifecycle.utc(now),
                "lease_owner": self.boot_id,
                "lease_token": lifecycle.new_lease_token(),
                "lease_expires": expires,
            }
            spec = lifecycle.claimed(attempt, self.boot_id)
            claimed.append(copy_task(self._change(task, changes, spec, now)))
        return claimed

    async def extend_leases(self, tokens: Sequence[str], lease_seconds: float) -> set[str]:
        await self._enter()
        expires = lifecycle.utc(lifecycle.lease_expiry(self._clock(), lease_seconds))
        wanted = set(tokens)
        held = set()
        for task in self._with_status(TaskStatus.IN_PROGRESS):
            if task.lease_token in wanted:
                self._state.tasks[task.id] = task.model_copy(update={"lease_expires": expires})
                held.add(task.lease_token)
        return held

    async def save_progress(self, task_id: int, token: str, progress: dict[str, Any]) -> None:
        await self._enter()
        task = self._leased(task_id, token)
        self._state.tasks[task_id] = task.model_copy(update={"progress": copy.deepcopy(progress)})

    async def record_event(
        self, task_id: int, kind: str, detail: dict[str, Any], actor: str = "worker"
    ) -> None:
        await self._enter()
        self._task(task_id)
        self._append_event(task_id, EventSpec(kind, actor, None, detail), self._clock())

    async def complete(self, task_id: int, token: str, result: dict[str, Any]) -> None:
        await self._enter()
        task = self._leased(task_id, token)
        now = self._clock()
        changes = {
            "status": TaskStatus.COMPLETED,
            "result": copy.deepcopy(result),
            "error": None,
            "finished_at": lifecycle.utc(now),
            **_NO_LEASE,
        }
        self._change(task, changes, lifecycle.completed(task.attempts), now)

    async def retry_later(
        self, task_id: int, token: str, error: str, not_before: float, *, defer: bool = False
    ) -> None:
        await self._enter()
        task = self._leased(task_id, token)
        changes = {
            "status": TaskStatus.QUEUED,
            "error": error,
            "not_before": lifecycle.utc(not_before),
            **_NO_LEASE,
        }
        if defer:
            changes["attempts"] = max(task.attempts - 1, 0)
        spec = lifecycle.ended_for_retry(task.attempts, error, not_before, defer)
        self._change(task, changes, spec, self._clock())

    async def fail(self, task_id: int, token: str, error: str) -> None:
        await self._enter()
        task = self._leased(task_id, token)
        now = self._clock()
        changes = {
            "status": TaskStatus.FAILED,
            "error": error,
            "finished_at": lifecycle.utc(now),
            **_NO_LEASE,
        }
        self._change(task, changes, lifecycle.failed(task.attempts, error), now)

    async def release(self, task_id: int, token: str, reason: str) -> None:
        await self._enter()
        task = self._leased(task_id, token)
        now = self._clock()
        changes = {
            "status": TaskStatus.QUEUED,
            "attempts": max(task.attempts - 1, 0),
            "not_before": lifecycle.utc(now),
            **_NO_LEASE,
        }
        self._change(task, changes, lifecycle.released(reason), now)

    async def recover_orphans(self) -> list[Task]:
        await self._enter()
        now = self._clock()
        orphans = [
            t for t in self._with_status(TaskStatus.IN_PROGRESS) if t.lease_owner != self.boot_id
        ]
        return [copy_task(self._recover(task, now)) for task in sorted(orphans, key=lambda t: t.id)]

    async def reclaim_expired(self) -> list[Task]:
        await self._enter()
        now = self._clock()
        expired = [
            t
            for t in self._with_status(TaskStatus.IN_PROGRESS)
            if t.lease_expires is not None and t.lease_expires.timestamp() <= now
        ]
        return [copy_task(self._reclaim(task, now)) for task in sorted(expired, key=lambda t: t.id)]

    # --- operator actions -----------------------------------------------------------------
    async def cancel(self, task_id: int, actor: str = "cli") -> Task:
        await self._enter()
        task = self._task(task_id)
        check_transition(task.status, TaskStatus.CANCELLED)
        now = self._clock()
        changes = {"status": TaskStatus.CANCELLED, "finished_at": lifecycle.utc(now), **_NO_LEASE}
        spec = lifecycle.cancelled(task.status, actor)
        return copy_task(self._change(task, changes, spec, now))

    async def retry(self, task_id: int, actor: str = "cli") -> Task:
        await self._enter()
        task = self._task(task_id)
        lifecycle.check_operator_retry(task.status)
        now = self._clock()
        changes = {
            "status": TaskStatus.QUEUED,
            "attempts": 0,
            "interruptions": 0,
            "error": None,
            "result": None,
            "finished_at": None,
            "not_before": lifecycle.utc(now),
        }
        return copy_task(self._change(task, changes, lifecycle.retried(task.status, actor), now))

    # --- housekeeping ---------------------------------------------------------------------
    async def prune_deliveries(self, before: float) -> int:
        await self._enter()
        old = [k for k, d in self._state.deliveries.items() if d.received_at.timestamp() < before]
        for key in old:
            del self._state.deliveries[key]
        return len(old)

    async def prune(
        self,
        finished_before: float,
        statuses: Collection[TaskStatus],
        limit: int,
        *,
        dry_run: bool = False,
    ) -> list[int]:
        wanted = lifecycle.check_prune(statuses, limit)
        await self._enter()
        cutoff = lifecycle.utc(finished_before)
        old = sorted(
            (t.finished_at, t.id)
            for t in self._state.tasks.values()
            if t.status.value in wanted and t.finished_at is not None and t.finished_at < cutoff
        )
        ids = [task_id for _, task_id in old[:limit]]
        if not dry_run:
            for task_id in ids:
                task = self._state.tasks.pop(task_id)
                self._state.events.pop(task_id, None)
                if task.key is not None and self._state.keys.get(task.key) == task_id:
                    del self._state.keys[task.key]
        return ids

    # --- internals ------------------------------------------------------------------------
    @property
    def _outbox(self) -> MemoryOutbox:
        return self._state.outbox

    async def _enter(self) -> None:
        await trio.lowlevel.checkpoint()
        if not self._opened:
            raise StoreError("the memory task store is not open")

    def _add(self, new: NewTask, now: float) -> tuple[Task, bool]:
        known = self._state.keys.get(new.key) if new.key is not None else None
        if known is not None:
            return copy_task(self._state.tasks[known]), False
        self._state.last_task_id += 1
        task = Task(
            id=self._state.last_task_id,
            type=new.type,
            priority=new.priority,
            payload=copy.deepcopy(new.payload),
            status=TaskStatus.QUEUED,
            max_retries=new.max_retries,
            not_before=lifecycle.utc(now),
            created_at=lifecycle.utc(now),
            subject=new.subject,
            key=new.key,
        )
        self._state.tasks[task.id] = task
        self._state.events[task.id] = []
        if new.key is not None:
            self._state.keys[new.key] = task.id
        self._append_event(task.id, lifecycle.enqueued(new), now)
        return copy_task(task), True

    def _due(self, now: float, limit: int) -> list[Task]:
        """Due queued tasks in claim order, one per subject, skipping subjects already running."""
        busy = {t.subject for t in self._with_status(TaskStatus.IN_PROGRESS)}
        queued = sorted(self._with_status(TaskStatus.QUEUED), key=lambda t: (-t.priority, t.id))
        picked: list[Task] = []
        for task in queued:
            if len(picked) >= limit:
                break
            if task.not_before.timestamp() <= now and task.subject not in busy:
                busy.add(task.subject)
                picked.append(task)
        return picked

    def _recover(self, task: Task, now: float) -> Task:
        interruptions = task.interruptions + 1
        spec = lifecycle.orphan_outcome(task.lease_owner, interruptions, self._quarantine_after)
        return self._interrupt(task, spec, lifecycle.quarantine_error(interruptions), now)

    def _reclaim(self, task: Task, now: float) -> Task:
        assert task.lease_expires is not None  # only expired leases are reclaimed
        interruptions = task.interruptions + 1
        expired_at = task.lease_expires.timestamp()
        spec = lifecycle.lease_expired_outcome(
            task.lease_owner, expired_at, interruptions, self._quarantine_after
        )
        return self._interrupt(task, spec, lifecycle.lease_quarantine_error(interruptions), now)

    def _interrupt(self, task: Task, spec: EventSpec, quarantine_error: str, now: float) -> Task:
        """Requeue with the attempt refunded, or fail as quarantined, as ``spec`` decided."""
        interruptions = task.interruptions + 1
        changes: dict[str, Any] = {
            "attempts": max(task.attempts - 1, 0),
            "interruptions": interruptions,
            **_NO_LEASE,
        }
        if spec.status is TaskStatus.FAILED:
            changes["error"] = quarantine_error
            changes["finished_at"] = lifecycle.utc(now)
        else:
            changes["not_before"] = lifecycle.utc(now)
        return self._change(task, {"status": spec.status, **changes}, spec, now)

    def _leased(self, task_id: int, token: str) -> Task:
        task = self._task(task_id)
        if task.status is not TaskStatus.IN_PROGRESS or task.lease_token != token:
            raise lifecycle.lease_lost(task_id, task.status)
        return task

    def _change(self, task: Task, changes: dict[str, Any], spec: EventSpec, now: float) -> Task:
        updated = task.model_copy(update=changes)
        self._state.tasks[task.id] = updated
        self._append_event(task.id, spec, now)
        return updated

    def _append_event(self, task_id: int, spec: EventSpec, now: float) -> None:
        self._state.last_event_id += 1
        event = TaskEvent(
            id=self._state.last_event_id,
            task_id=task_id,
            at=lifecycle.utc(now),
            kind=spec.kind,
            actor=spec.actor,
            status=spec.status,
            detail=copy.deepcopy(spec.detail),
        )
        self._state.events[task_id].append(event)


_NO_LEASE: dict[str, Any] = {"lease_owner": None, "lease_token": None, "lease_expires": None}
