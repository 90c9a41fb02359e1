"""SqsStore: the TaskStore of a fleet on AWS. SQS hands out work, DynamoDB remembers it.

The record in DynamoDB is the truth (records.py); a message in SQS only says "task N may be
due". Enqueue writes the record, then sends; claim receives, then makes a conditional write
(claims.py), so a duplicate message is harmless and a missing one is sent again by the sweeper.
While a task runs, its message stays invisible for the lease (the visibility timeout is the
lease, extended with it); finishing deletes it, a retry delays it, a handback shows it at once.
A daemon that dies lets lease and visibility run out, and whoever receives the message next takes
the task over. Other daemons are alive, so there is no boot-based orphan recovery here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from functools import partial
from typing import Any

import trio

from tamma_trio.config import SqsQueueConfig
from tamma_trio.delivery import Delivery, DeliveryRecord
from tamma_trio.errors import LeaseLostError, StoreError, TaskNotFoundError
from tamma_trio.models import (
    NewTask,
    QueueStats,
    Task,
    TaskStatus,
    check_transition,
)
from tamma_trio.resource import Resource
from tamma_trio.store import lifecycle
from tamma_trio.store.aws import deliveries, intake
from tamma_trio.store.aws.claims import NO_LEASE, Claims
from tamma_trio.store.aws.client import Runner, make_clients
from tamma_trio.store.aws.messages import Messages
from tamma_trio.store.aws.names import MAX_VISIBILITY_SECONDS, AwsNames, visibility_seconds
from tamma_trio.store.aws.prune import prune
from tamma_trio.store.aws.records import Record
from tamma_trio.store.aws.setup import verify
from tamma_trio.store.aws.store_outbox import SqsOutboxMethods
from tamma_trio.store.aws.store_reads import SqsReadMethods
from tamma_trio.store.aws.subjects import Subjects
from tamma_trio.store.aws.tables import Tables
from tamma_trio.store.aws.writes import Writer
from tamma_trio.store.base import DEFAULT_LEASE_SECONDS, DEFAULT_QUARANTINE_AFTER, WallClock

# A record may lack its message (a crash between write and send, a lost wake-up); after this
# long queued without a claim, the sweeper sends it one more. Duplicates are dropped on receipt.
RESEND_AFTER = 120.0


SHARED_RULE = (
    "several daemons share an SQS queue, so a task of another boot is not an orphan: only an "
    "expired lease frees it (reclaim_expired, or the next receipt of its message)"
)


class SqsStore(SqsReadMethods, SqsOutboxMethods, Resource):
    """TaskStore over Amazon SQS and DynamoDB (see the module docstring)."""

    single_daemon = False

    def __init__(
        self,
        config: SqsQueueConfig,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: WallClock = time.time,
        boot_id: str | None = None,
        quarantine_after: int = DEFAULT_QUARANTINE_AFTER,
        resend_after: float = RESEND_AFTER,
    ) -> None:
        self.boot_id = boot_id or lifecycle.new_boot_id()
        self.config = config
        self.names = AwsNames(config.queue_name)
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._quarantine_after = quarantine_after
        self._resend_after = resend_after
        self._runner = Runner()
        self._opened = False
        self._claims: Claims | None = None
        self._stats: tuple[float, QueueStats] | None = None

    def lock_for_daemon(self) -> None:
        """Refused: several daemons share one queue by design (``single_daemon`` is False)."""
        raise StoreError(f"no one-daemon lock on an SQS queue: {SHARED_RULE}")

    async def _open(self) -> None:
        """Connect and check the queues and tables (StoreError naming what is missing)."""
        clients = await self._runner.raw(partial(make_clients, self.config))
        problems = await self._runner.raw(partial(verify, clients, self.names, self._lease_seconds))
        if problems:
            raise StoreError("the AWS queue is not ready: " + "; ".join(problems))
        self.tables = Tables(clients.dynamodb, self.names, self._runner)
        self.messages = Messages(clients.sqs, self.names, self._runner)
        await self.messages.open()
        self.subjects = Subjects(self.tables)
        self._claims = Claims(
            self.tables,
            self.messages,
            self.subjects,
            boot_id=self.boot_id,
            quarantine_after=self._quarantine_after,
            resend_after=self._resend_after,
        )
        self._writer = Writer(self.tables, self._claims, self._clock)
        self._opened = True

    async def aclose(self) -> None:
        if self._opened:
            with trio.CancelScope(shield=True):
                await self.messages.flush()
        self._opened = False

    async def ping(self) -> None:
        await self._enter()
        await self.tables.get_key("ping")

    # --- intake ---------------------------------------------------------------------------
    async def add(self, new: NewTask) -> tuple[Task, bool]:
        [result] = await self.add_many([new])
        return result

    async def add_many(self, news: Sequence[NewTask]) -> list[tuple[Task, bool]]:
        await self._enter()
        return await intake.add_many(self.tables, self.messages, news, self._clock())

    async def add_delivery(
        self, record: DeliveryRecord, news: Sequence[NewTask]
    ) -> tuple[Delivery, list[tuple[Task, bool]]]:
        await self._enter()
        now = self._clock()
        return await deliveries.add_delivery(self.tables, self.messages, record, news, now)

    async def get_delivery(self, forge: str, delivery_id: str) -> Delivery | None:
        await self._enter()
        return await deliveries.get_delivery(self.tables, forge, delivery_id)

    async def list_deliveries(self, *, limit: int = 50, offset: int = 0) -> list[Delivery]:
        lifecycle.check_page(limit, offset)
        await self._enter()
        return await deliveries.list_deliveries(self.tables, limit, offset)

    async def prune_deliveries(self, before: float) -> int:
        await self._enter()
        return await deliveries.prune_deliveries(self.tables, before)

    # --- housekeeping ---------------------------------------------------------------------
    async def prune(
        self,
        finished_before: float,
        statuses: Collection[TaskStatus],
        limit: int,
        *,
        dry_run: bool = False,
    ) -> list[int]:
        await self._enter()
        return await prune(self.tables, finished_before, statuses, limit, dry_run=dry_run)

    # --- the worker's side ----------------------------------------------------------------
    async def claim(self, limit: int, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> list[Task]:
        await self._enter()
        assert self._claims is not None
        return await self._claims.claim(limit, lease_seconds, self._clock())

    async def extend_leases(self, tokens: Sequence[str], lease_seconds: float) -> set[str]:
        await self._enter()
        assert self._claims is not None
        now = self._clock()
        expires = lifecycle.utc(lifecycle.lease_expiry(now, lease_seconds))
        held: set[str] = set()
        for token in tokens:
            mine = self._claims.held.get(token)
            if mine is None:
                continue
            try:
                await self._writer.leased(mine.record.task.id, token, {"lease_expires": expires})
            except (LeaseLostError, TaskNotFoundError):
                self._claims.held.pop(token, None)
                continue
            held.add(token)
        await self.messages.hide(
            [self._claims.held[t].message for t in held], visibility_seconds(lease_seconds)
        )
        return held

    async def save_progress(self, task_id: int, token: str, progress: dict[str, Any]) -> None:
        await self._enter()
        await self._writer.leased(task_id, token, {"progress": progress})

    async def record_event(
        self, task_id: int, kind: str, detail: dict[str, Any], actor: str = "worker"
    ) -> None:
        await self._enter()
        spec = lifecycle.EventSpec(kind, actor, None, detail)
        await self._writer.write(task_id, lambda r, now: r.change({}, spec, now))

    async def complete(self, task_id: int, token: str, result: dict[str, Any]) -> None:
        await self._enter()
        now = self._clock()
        changes: dict[str, Any] = {"status": TaskStatus.COMPLETED, "result": result}
        changes.update(error=None, finished_at=lifecycle.utc(now))
        record = await self._writer.leased(
            task_id, token, {**changes, **NO_LEASE}, lambda t: lifecycle.completed(t.attempts)
        )
        await self._let_go(token, record, hide=None)

    async def retry_later(
        self, task_id: int, token: str, error: str, not_before: float, *, defer: bool = False
    ) -> None:
        await self._enter()
        changes: dict[str, Any] = {"status": TaskStatus.QUEUED, "error": error, **NO_LEASE}
        changes["not_before"] = lifecycle.utc(not_before)
        record = await self._writer.leased(
            task_id,
            token,
            changes,
            lambda t: lifecycle.ended_for_retry(t.attempts, error, not_before, defer),
            refund=defer,
        )
        await self._let_go(token, record, hide=_delay(not_before - self._clock()))

    async def fail(self, task_id: int, token: str, error: str) -> None:
        await self._enter()
        now = self._clock()
        changes: dict[str, Any] = {"status": TaskStatus.FAILED, "error": error, **NO_LEASE}
        changes["finished_at"] = lifecycle.utc(now)
        record = await self._writer.leased(
            task_id, token, changes, lambda t: lifecycle.failed(t.attempts, error)
        )
        await self._let_go(token, record, hide=None)

    async def release(self, task_id: int, token: str, reason: str) -> None:
        await self._enter()
        now = self._clock()
        changes = {"status": TaskStatus.QUEUED, "not_before": lifecycle.utc(now), **NO_LEASE}
        record = await self._writer.leased(
            task_id,
            token,
            changes,
            lambda _t: lifecycle.released(reason),
            refund=True,
        )
        await self._let_go(token, record, hide=0)

    async def recover_orphans(self) -> list[Task]:
        """Refused: ``single_daemon`` is False, see SHARED_RULE."""
        raise StoreError(f"no orphan recovery on an SQS queue: {SHARED_RULE}")

    async def reclaim_expired(self) -> list[Task]:
        await self._enter()
        assert self._claims is not None
        return await self._claims.reclaim_expired(self._clock())

    async def sweep(self) -> int:
        """Send a message for every record that waited too long without one; return how many."""
        await self._enter()
        assert self._claims is not None
        return await self._claims.sweep(self._clock())

    # --- operator actions -----------------------------------------------------------------
    async def cancel(self, task_id: int, actor: str = "cli") -> Task:
        await self._enter()

        def cancelled(record: Record, now: float) -> Record:
            previous = record.task.status
            check_transition(previous, TaskStatus.CANCELLED)
            changes = {"status": TaskStatus.CANCELLED, "finished_at": lifecycle.utc(now)}
            return record.change({**changes, **NO_LEASE}, lifecycle.cancelled(previous, actor), now)

        record, old = await self._writer.write(task_id, cancelled)
        if old.task.lease_token is not None:
            await self._free_subject(old.task.subject, old.task.lease_token)
            assert self._claims is not None
            mine = self._claims.held.pop(old.task.lease_token, None)
            if mine is not None:
                self.messages.drop(mine.message)
                await self.messages.flush()
        task: Task = record.task
        return task.model_copy(deep=True)

    async def retry(self, task_id: int, actor: str = "cli") -> Task:
        await self._enter()

        def retried(record: Record, now: float) -> Record:
            previous = record.task.status
            lifecycle.check_operator_retry(previous)
            changes = {
                "status": TaskStatus.QUEUED,
                "attempts": 0,
                "interruptions": 0,
                "error": None,
                "result": None,
                "finished_at": None,
                "not_before": lifecycle.utc(now),
            }
            return record.change(changes, lifecycle.retried(previous, actor), now, unsent_at=now)

        record, _old = await self._writer.write(task_id, retried)
        await self.messages.send([(record.task.id, int(record.task.priority))])
        return record.task.model_copy(deep=True)

    # --- internals ------------------------------------------------------------------------
    async def _enter(self) -> None:
        await trio.lowlevel.checkpoint()
        if not self._opened:
            raise StoreError("the SQS task store is not open")

    async def _let_go(self, token: str, record: Record, *, hide: int | None) -> None:
        """After the holder's last write: free the subject, then delay or delete the message."""
        assert self._claims is not None
        mine = self._claims.held.pop(token, None)
        await self._free_subject(record.task.subject, token)
        if mine is None:
            return
        if hide is None:
            self.messages.drop(mine.message)
        else:
            await self.messages.hide([mine.message], hide)

    async def _free_subject(self, subject: str, token: str) -> None:
        assert self._claims is not None
        await self._claims.free_subject(subject, token)


def _delay(seconds: float) -> int:
    """How long a retried task's message stays hidden; longer waits are re-delayed on receipt."""
    return min(MAX_VISIBILITY_SECONDS, max(0, math.ceil(seconds)))
