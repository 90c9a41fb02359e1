"""The claim path of the AWS store: receive, judge each message against its record, write.

For each received message, highest priority queue first, lowest task id first within a batch:

- no record, or a finished task: delete the message;
- a running task: a message other than the one its lease was claimed with is a duplicate
  (deleted); its own message back while the lease lives is hidden again for the rest of the
  lease; after the lease ran out the task is taken over (lease_expired, then claimed);
- a queued task not yet due: hidden again until it is due (at most 12 hours at a time);
- its subject busy: parked behind the running task (see subjects.py), the message deleted;
- else: the subject lock, then the conditional write to in_progress. The message stays hidden for
  the lease, and the store extends both while the task runs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

from tamma_trio.models import Task, TaskStatus
from tamma_trio.store import lifecycle
from tamma_trio.store.aws.messages import Message, Messages
from tamma_trio.store.aws.names import (
    INDEX_BY_DUE,
    MAX_VISIBILITY_SECONDS,
    PRIORITIES,
    visibility_seconds,
)
from tamma_trio.store.aws.records import Record
from tamma_trio.store.aws.subjects import Lock, Subjects, is_stale
from tamma_trio.store.aws.tables import Tables

log = logging.getLogger(__name__)

NO_LEASE: dict[str, Any] = {"lease_owner": None, "lease_token": None, "lease_expires": None}


@dataclass
class Held:
    """A task this store claimed: its latest record and the message that stays hidden for it."""

    record: Record
    message: Message


class Claims:
    """Claims, lease takeover, reclaim and the sweeper, over one store's tables and queues."""

    def __init__(
        self,
        tables: Tables,
        messages: Messages,
        subjects: Subjects,
        *,
        boot_id: str,
        quarantine_after: int,
        resend_after: float,
    ) -> None:
        self.tables = tables
        self.messages = messages
        self.subjects = subjects
        self.boot_id = boot_id
        self.quarantine_after = quarantine_after
        self.resend_after = resend_after
        self.held: dict[str, Held] = {}
        self._next_sweep = -math.inf

    async def claim(self, limit: int, lease_seconds: float, now: float) -> list[Task]:
        lifecycle.lease_expiry(now, lease_seconds)
        if limit <= 0:
            return []
        if now >= self._next_sweep:
            self._next_sweep = now + self.resend_after / 2
            await self.sweep(now)
        claimed: list[Task] = []
        visibility = visibility_seconds(lease_seconds)
        for priority in PRIORITIES:
            while len(claimed) < limit:
                batch = await self.messages.receive(priority, limit - len(claimed), visibility)
                if not batch:
                    break
                claimed.extend(await self._claim_batch(batch, now, lease_seconds))
        await self.messages.flush()
        return [task.model_copy(deep=True) for task in claimed]

    async def _claim_batch(
        self, batch: list[Message], now: float, lease_seconds: float
    ) -> list[Task]:
        records = await self.tables.get_many([m.task_id for m in batch if m.task_id is not None])
        seen: set[int] = set()
        claimed = []
        for message in sorted(batch, key=lambda m: (m.task_id is None, m.task_id or 0)):
            if message.task_id is None:
                log.warning(
                    "message %s carries no task id: left for the dead-letter queue",
                    message.message_id,
                )
                continue
            if message.task_id in seen:
                self.messages.drop(message)
                continue
            seen.add(message.task_id)
            task = await self._claim_message(
                message, records.get(message.task_id), now, lease_seconds
            )
            if task is not None:
                claimed.append(task)
        return claimed

    async def _claim_message(
        self, message: Message, record: Record | None, now: float, lease_seconds: float
    ) -> Task | None:
        if record is None:
            self.messages.drop(message)
            return None
        task, base = record.task, record
        if task.status is TaskStatus.IN_PROGRESS:
            if record.msg_id != message.message_id:
                self.messages.drop(message)  # a duplicate: the holder keeps its own message
                return None
            remaining = _lease_left(task, now)
            if remaining > 0:
                await self.messages.hide([message], visibility_seconds(remaining))
                return None
            base = self.expire(record, now)
            if base.task.status is TaskStatus.FAILED:
                if await self.tables.put(base, record.ver):
                    self.messages.drop(message)
                    await self.free_subject(task.subject, task.lease_token)
                return None
        elif task.status is not TaskStatus.QUEUED:
            self.messages.drop(message)
            return None
        wait = base.task.not_before.timestamp() - now
        if wait > 0:
            await self.messages.hide([message], min(MAX_VISIBILITY_SECONDS, math.ceil(wait)))
            return None
        return await self._take(base, record, message, now, lease_seconds)

    async def _take(
        self, base: Record, read: Record, message: Message, now: float, lease_seconds: float
    ) -> Task | None:
        """Lock the subject, then write the claim; park the task when the subject is busy."""
        claimed = self._claimed(base, now, lease_seconds, message)
        token = claimed.task.lease_token or ""
        busy = await self._lock(claimed.task, read.task.lease_token, now)
        if busy is not None:
            await self._park(base, read.ver, message, busy, now)
            return None
        if not await self.tables.put(claimed, read.ver):
            # Changed meanwhile: the message stays hidden for the lease and is judged again.
            await self.free_subject(claimed.task.subject, token)
            return None
        self.held[token] = Held(claimed, message)
        return claimed.task

    async def _lock(self, task: Task, previous: str | None, now: float) -> Lock | None:
        """Take the subject lock; None when taken, else the live lock that holds it."""
        if await self.subjects.acquire(task, previous, now):
            return None
        lock = await self.subjects.holder(task.subject)
        if lock is None:
            return None if await self.subjects.acquire(task, previous, now) else _GONE
        holder = await self.tables.get(lock.task_id)
        if is_stale(lock, holder, now):
            return None if await self.subjects.take_over(task, lock, now) else _GONE
        return lock

    async def _park(
        self, base: Record, read_ver: int, message: Message, holder: Lock, now: float
    ) -> None:
        if holder is _GONE or not await self.subjects.park(base.task, holder):
            await self.messages.hide([message], 0)  # the lock moved: judge it again soon
            return
        # Marked unsent: if the wake-up is lost (a crash), the sweeper sends it again.
        if await self.tables.put(base.change({}, None, now, unsent_at=now), read_ver):
            self.messages.drop(message)

    def _claimed(self, base: Record, now: float, lease_seconds: float, message: Message) -> Record:
        attempt = base.task.attempts + 1
        changes = {
            "status": TaskStatus.IN_PROGRESS,
            "attempts": attempt,
            "started_at": lifecycle.utc(now),
            "lease_owner": self.boot_id,
            "lease_token": lifecycle.new_lease_token(),
            "lease_expires": lifecycle.utc(lifecycle.lease_expiry(now, lease_seconds)),
        }
        spec = lifecycle.claimed(attempt, self.boot_id)
        return base.change(changes, spec, now, msg_id=message.message_id, unsent_at=None)

    def expire(self, record: Record, now: float) -> Record:
        """A running task whose lease ran out: queued again (attempt refunded) or quarantined."""
        task = record.task
        interruptions = task.interruptions + 1
        expired_at = task.lease_expires.timestamp() if task.lease_expires else now
        spec = lifecycle.lease_expired_outcome(
            task.lease_owner, expired_at, interruptions, self.quarantine_after
        )
        changes: dict[str, Any] = {
            "status": spec.status,
            "attempts": max(task.attempts - 1, 0),
            "interruptions": interruptions,
            **NO_LEASE,
        }
        if spec.status is TaskStatus.FAILED:
            changes["error"] = lifecycle.lease_quarantine_error(interruptions)
            changes["finished_at"] = lifecycle.utc(now)
        else:
            changes["not_before"] = lifecycle.utc(now)
        return record.change(changes, spec, now)

    async def reclaim_expired(self, now: float) -> list[Task]:
        ids = await self.tables.ids_in(INDEX_BY_DUE, "status", "in_progress", upto=now)
        reclaimed, wake = [], []
        for record in sorted((await self.tables.get_many(ids)).values(), key=_task_id):
            task = record.task
            if task.status is not TaskStatus.IN_PROGRESS or _lease_left(task, now) > 0:
                continue
            new = self.expire(record, now)
            queued = new.task.status is TaskStatus.QUEUED
            new = replace(new, unsent_at=now) if queued else new
            if not await self.tables.put(new, record.ver):
                continue
            self.held.pop(task.lease_token or "", None)
            await self.free_subject(task.subject, task.lease_token)
            if queued:
                wake.append((task.id, int(task.priority)))
            reclaimed.append(new.task.model_copy(deep=True))
        await self.messages.send(wake)
        return reclaimed

    async def sweep(self, now: float) -> int:
        """Send a message to every queued record marked unsent for longer than resend_after."""
        cutoff = now - self.resend_after
        ids = await self.tables.unsent_ids(cutoff)
        wake = []
        for record in (await self.tables.get_many(ids)).values():
            stuck = record.unsent_at is not None and record.unsent_at <= cutoff
            if record.task.status is not TaskStatus.QUEUED or not stuck:
                continue
            if await self.tables.put(record.change({}, None, now, unsent_at=now), record.ver):
                wake.append((record.task.id, int(record.task.priority)))
        await self.messages.send(wake)
        if wake:
            log.info("sweeper: sent %d task message(s) that were missing", len(wake))
        return len(wake)

    def remember(self, record: Record) -> None:
        """Keep the held copy current after a write, so the next leased write needs no read."""
        for held in self.held.values():
            if held.record.task.id == record.task.id:
                held.record = record

    async def free_subject(self, subject: str, token: str | None) -> None:
        """Free the lock ``token`` holds and wake the tasks parked behind it."""
        parked = await self.subjects.release(subject, token)
        if parked:
            await self.messages.send(parked)


# The subject lock changed between two reads: neither taken nor known to be busy.
_GONE = Lock(task_id=0, token="", at=0.0)


def _lease_left(task: Task, now: float) -> float:
    return task.lease_expires.timestamp() - now if task.lease_expires is not None else 0.0


def _task_id(record: Record) -> int:
    return record.task.id
