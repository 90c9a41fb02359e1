"""Read-change-write of one task record, with the conditional put and the retry around it.

Every change to a record is computed from the version read and written only if that version is
still the stored one; a concurrent writer (another daemon, the CLI, this daemon's own lease
keeper) makes the put fail, and the change is recomputed from a fresh read. A lease holder's
write checks the lease token on every attempt, so it raises LeaseLostError the moment the task
was cancelled or taken over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tamma_trio.errors import StoreError, TaskNotFoundError
from tamma_trio.models import Task, TaskStatus
from tamma_trio.store import lifecycle
from tamma_trio.store.aws.claims import Claims
from tamma_trio.store.aws.records import Record
from tamma_trio.store.aws.tables import Tables
from tamma_trio.store.base import WallClock

WRITE_ATTEMPTS = 5

Build = Callable[[Record, float], Record]


class Writer:
    def __init__(self, tables: Tables, claims: Claims, clock: WallClock) -> None:
        self.tables = tables
        self.claims = claims
        self.clock = clock

    async def read(self, task_id: int) -> Record:
        record = await self.tables.get(task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        return record

    async def write(
        self, task_id: int, build: Build, first: Record | None = None
    ) -> tuple[Record, Record]:
        """The record written and the one it replaced."""
        record = first or await self.read(task_id)
        for _ in range(WRITE_ATTEMPTS):
            new = build(record, self.clock())
            if await self.tables.put(new, record.ver):
                self.claims.remember(new)
                return new, record
            record = await self.read(task_id)
        raise StoreError(f"task {task_id} kept changing during the write; try again")

    async def leased(
        self,
        task_id: int,
        token: str,
        changes: dict[str, Any],
        event: Callable[[Task], lifecycle.EventSpec] | None = None,
        *,
        refund: bool = False,
    ) -> Record:
        """A write by the lease holder: LeaseLostError unless ``token`` still holds the task."""
        mine = self.claims.held.get(token)
        first = mine.record if mine is not None and mine.record.task.id == task_id else None

        def build(record: Record, now: float) -> Record:
            task = record.task
            if task.status is not TaskStatus.IN_PROGRESS or task.lease_token != token:
                raise lifecycle.lease_lost(task_id, task.status)
            extra = {"attempts": max(task.attempts - 1, 0)} if refund else {}
            spec = event(task) if event is not None else None
            return record.change({**changes, **extra}, spec, now)

        written, _old = await self.write(task_id, build, first)
        return written
