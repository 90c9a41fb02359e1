"""The TaskStore protocol every backend (memory, SQLite, later Redis and SQS) implements.

The contract, checked by tests/test_store_contract.py against every backend:

- ``add`` is idempotent on ``NewTask.key``: a known key returns the existing task, created=False.
- ``claim`` hands out queued tasks whose not_before has passed, highest priority first, then
  oldest (lowest id), never two in_progress tasks with one subject, and sets a lease (owner =
  the store's boot id, a fresh token, an expiry) in one atomic step. It increments attempts.
- Every call that ends or changes a claimed task takes the lease token and raises LeaseLostError
  when it no longer matches, so a re-claimed task is never completed twice.
- ``release`` hands a task back (shutdown) without spending a retry: attempts is refunded;
  so does ``retry_later(..., defer=True)``, at a later time (a forge's rate-limit reset).
  ``recover_orphans`` does the same for tasks of an older boot (a crash) and also counts a crash
  interruption in ``Task.interruptions``; after ``quarantine_after`` of them the task fails.
- ``reclaim_expired`` does the same, while the daemon runs, for every task whose lease expired
  (whoever holds it); the old holder's token is dead from then on.
- Every status change appends a TaskEvent with time, actor and detail.
- Timestamps come from the store's injected wall clock (seconds since the epoch), so trio's
  MockClock can drive persisted times in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, Self

from tamma_trio.delivery import Delivery, DeliveryRecord
from tamma_trio.models import (
    NewTask,
    QueueStats,
    Task,
    TaskEvent,
    TaskPriority,
    TaskStatus,
    TaskType,
    ThroughputBucket,
)
from tamma_trio.service_events import (
    NewServiceEvent,
    Notification,
    NotificationStatus,
    PrunedEvents,
    ServiceEvent,
)

WallClock = Callable[[], float]

DEFAULT_LEASE_SECONDS = 60.0

# A task that keeps dying with the daemon (OOM, segfault in a tool) is parked as failed after
# this many crash interruptions instead of taking the daemon down forever.
DEFAULT_QUARANTINE_AFTER = 3

# A text search looks at this many of the newest tasks that pass the other filters, and no
# further: a substring match cannot use an index, so an unbounded search would read every task.
TEXT_SEARCH_WINDOW = 10_000


class TaskStore(Protocol):
    """Durable task state. All methods are async; none blocks the trio loop."""

    boot_id: str

    # True when one daemon at a time owns the store (memory, SQLite): the daemon takes
    # ``lock_for_daemon`` and, at start, requeues what older boots left (``recover_orphans``).
    # False when several daemons share it (Redis): the others are alive, so a task of another
    # boot is no orphan, there is no lock, and both calls raise StoreError; only an expired
    # lease (``reclaim_expired``) frees a task.
    single_daemon: bool

    def lock_for_daemon(self) -> None:
        """Claim the store for this daemon (before opening it); StoreLockedError if another has it.

        Two daemons on one single-daemon store would each requeue the other's running tasks as
        orphans.
        """

    async def __aenter__(self) -> Self:
        """Open: create or migrate the schema; raise StoreError for a foreign or corrupt store.

        ``async with store:`` is the one way to open a store (``tamma_trio.resource``).
        """

    async def __aexit__(self, *exc_info: object) -> None:
        """Flush pending writes and release the store (``aclose``)."""

    async def aclose(self) -> None:
        """Flush pending writes and release the store."""

    async def ping(self) -> None:
        """Return when the store answers; raise StoreError otherwise (for /ready)."""

    # --- intake ---------------------------------------------------------------------------
    async def add(self, new: NewTask) -> tuple[Task, bool]:
        """Store ``new`` as queued; return (task, created)."""

    async def add_many(self, news: Sequence[NewTask]) -> list[tuple[Task, bool]]:
        """Like ``add`` for many tasks in one transaction (bulk intake, benchmarks)."""

    async def add_delivery(
        self, record: DeliveryRecord, news: Sequence[NewTask]
    ) -> tuple[Delivery, list[tuple[Task, bool]]]:
        """Log a webhook delivery and store its tasks in one transaction.

        A known (forge, delivery_id) adds nothing and returns the stored delivery with no
        tasks: the caller answers a redelivery from it. The stored delivery's task_ids are the
        record's followed by the ids of ``news`` as stored (created or found by key).
        """

    # --- reads ----------------------------------------------------------------------------
    async def get(self, task_id: int) -> Task:
        """The task, or TaskNotFoundError."""

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
        """Tasks newest first, filtered by status, type and repository (``owner/name``).

        ``before`` keeps ids below it (keyset paging: the next page starts after the last id
        shown, at the cost of one index seek however deep it is). ``text`` is a case-insensitive
        (ASCII) substring of the payload's or the result's JSON or of the error, searched among
        the newest TEXT_SEARCH_WINDOW tasks that pass the other filters.
        """

    async def tasks_of_subject(self, subject: str, limit: int = 20) -> list[Task]:
        """The newest ``limit`` tasks of one subject (``owner/name#number``), newest first."""

    async def get_delivery(self, forge: str, delivery_id: str) -> Delivery | None:
        """The logged delivery with this id from this forge, if any."""

    async def list_deliveries(self, *, limit: int = 50, offset: int = 0) -> list[Delivery]:
        """Logged deliveries, newest first."""

    async def prune_deliveries(self, before: float) -> int:
        """Forget deliveries received before wall time ``before``; return how many."""

    async def events(self, task_id: int) -> list[TaskEvent]:
        """The task's audit trail, oldest first (TaskNotFoundError for an unknown id)."""

    async def stats(self) -> QueueStats:
        """Counts by status, queue depth (queued tasks) and the oldest queued task's age."""

    async def throughput(self, since: float, bucket_seconds: int) -> list[ThroughputBucket]:
        """Completed and failed tasks by finished_at, in buckets of ``bucket_seconds`` from
        wall time ``since``; only buckets with a task, oldest first."""

    async def queued_by_priority(self) -> dict[TaskPriority, int]:
        """Queued tasks (due or not) counted by priority, every priority present."""

    async def next_due(self) -> float | None:
        """Wall time of the earliest not_before among queued tasks, or None when none is queued."""

    # --- the worker's side ----------------------------------------------------------------
    async def claim(self, limit: int, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> list[Task]:
        """Lease up to ``limit`` due tasks to this boot (see the module contract)."""

    async def extend_leases(self, tokens: Sequence[str], lease_seconds: float) -> set[str]:
        """Push the expiry of the given leases forward; return the tokens still held.

        A token missing from the answer was lost (the task was cancelled or re-claimed), so the
        lease keeper can cancel that task's work at once.
        """

    async def save_progress(self, task_id: int, token: str, progress: dict[str, Any]) -> None:
        """Store step records so an interrupted task resumes after its last finished step."""

    async def record_event(
        self, task_id: int, kind: str, detail: dict[str, Any], actor: str = "worker"
    ) -> None:
        """Append an event that is not a status change (an approval decision, a step)."""

    # The four endings return nothing: the worker already holds the task, and building the
    # updated Task for every completion cost about a quarter of the daemon's time per task.
    # A caller that needs the stored state reads it with ``get``.
    async def complete(self, task_id: int, token: str, result: dict[str, Any]) -> None:
        """in_progress -> completed with ``result``."""

    async def retry_later(
        self, task_id: int, token: str, error: str, not_before: float, *, defer: bool = False
    ) -> None:
        """in_progress -> queued at wall time ``not_before`` after a failed attempt.

        With ``defer`` the attempt is refunded and the event is "deferred" instead of
        "retry_scheduled": the forge refused to answer before ``not_before`` (a rate limit), so
        the task did not fail and must not lose a retry. The caller bounds how often it defers,
        by counting the "deferred" events.
        """

    async def fail(self, task_id: int, token: str, error: str) -> None:
        """in_progress -> failed: retries spent or not retryable; the caller escalates."""

    async def release(self, task_id: int, token: str, reason: str) -> None:
        """in_progress -> queued now, attempt refunded (shutdown or lease handback)."""

    async def recover_orphans(self) -> list[Task]:
        """Requeue every in_progress task leased by another boot (a crash); return them.

        Each counts as a crash interruption; past the quarantine threshold the task fails
        instead, with the evidence in its error.
        """

    async def reclaim_expired(self) -> list[Task]:
        """Requeue every in_progress task whose lease_expires <= now; return them.

        The holder stopped renewing (it hangs, lost the store, or died without a restart), so
        the attempt is refunded and one interruption counted, with a "lease_expired" event; past
        the quarantine threshold the task fails instead, like ``recover_orphans``. A late
        complete/fail/retry_later/release by the old holder raises LeaseLostError.
        """

    # --- operator actions -----------------------------------------------------------------
    async def cancel(self, task_id: int, actor: str = "cli") -> Task:
        """queued or in_progress -> cancelled (a running task's worker loses its lease)."""

    async def retry(self, task_id: int, actor: str = "cli") -> Task:
        """failed or cancelled -> queued now, with a fresh attempt budget."""

    # --- service events and their webhook outbox ------------------------------------------
    async def publish(self, event: NewServiceEvent, targets: Sequence[str] = ()) -> ServiceEvent:
        """Append ``event`` to the service event stream (the next id, the store's time) and,
        in the same transaction, one pending delivery due now for each of ``targets``."""

    async def service_events(self, *, after: int = 0, limit: int = 100) -> list[ServiceEvent]:
        """Events with an id above ``after``, oldest first (resuming a stream)."""

    async def notifications(
        self, *, status: NotificationStatus | None = None, limit: int = 100
    ) -> list[Notification]:
        """Deliveries with their events: pending ones by next_attempt_at (the sender's order),
        any other selection newest first."""

    async def record_notification(
        self, delivery_id: int, *, error: str | None, next_attempt: float | None = None
    ) -> None:
        """The end of one attempt: ``error`` None means delivered; otherwise the attempt is
        counted and the delivery waits until wall time ``next_attempt``, or is dead without
        one. A delivery that is no longer pending is left alone (an operator got there first)."""

    async def renotify(self, delivery_ids: Sequence[int] | None = None) -> int:
        """Dead deliveries (all, or those of ``delivery_ids``) pending again now with a fresh
        attempt count; returns how many."""

    # --- housekeeping ---------------------------------------------------------------------
    async def prune_events(
        self, before: float, dead_before: float, limit: int, *, dry_run: bool = False
    ) -> PrunedEvents:
        """Delete up to ``limit`` deliveries delivered before wall time ``before`` or dead with
        an event from before ``dead_before``, oldest first; then up to ``limit`` service events
        from before ``before`` that no delivery refers to any more. A pending delivery and its
        event always stay. ``dry_run`` counts what would go (an event counts when every delivery
        of it would go too) and deletes nothing. ValueError for a limit below 1."""

    async def prune(
        self,
        finished_before: float,
        statuses: Collection[TaskStatus],
        limit: int,
        *,
        dry_run: bool = False,
    ) -> list[int]:
        """Delete up to ``limit`` tasks in ``statuses`` (finished ones only: completed, failed,
        cancelled; ValueError otherwise) whose finished_at is before wall time
        ``finished_before``, oldest finished first, with their events; return their ids.

        ``dry_run`` returns the ids that would go and deletes nothing. A backend with a file
        returns the pages it freed to the file system, a bounded amount per call, so a prune in
        small batches never holds the store for long.
        """
