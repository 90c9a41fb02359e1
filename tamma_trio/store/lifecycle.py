"""What every backend records for each step of a task's life, so all stores leave the same trail.

The field changes each step makes (one source of truth; memory.py and sqlite_ops.py follow it):

=================  =========================================================================
add                queued; attempts 0; not_before = created_at = now; progress {}
claim              in_progress; attempts + 1; started_at = now; lease = (boot id, fresh
                   token, now + lease_seconds)
complete           completed; result; error cleared; finished_at = now; lease cleared
retry_later        queued at the given not_before; error kept; lease cleared; the attempt
                   stays spent, unless ``defer``: then it is refunded and the event is
                   "deferred" (a rate limit, no fault of the task's)
fail               failed; error; finished_at = now; lease cleared
release            queued now; attempt refunded; lease cleared (shutdown, handback)
recover_orphans    queued now; attempt refunded; interruptions + 1; lease cleared; or, once
                   interruptions reaches quarantine_after, failed with the evidence as error
reclaim_expired    like recover_orphans, for every in_progress task whose lease_expires <= now
                   (any owner, this boot included), with a "lease_expired" event
cancel             cancelled; finished_at = now; lease cleared, so the worker's token dies
prune              a finished task older than the cutoff and its events are deleted
retry              queued now; attempts and interruptions 0; error, result, finished_at
                   cleared; progress kept, so a retried task resumes after its last step
=================  =========================================================================

started_at is the start of the latest attempt and is kept when a task is requeued.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
import uuid
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from tamma_trio.errors import LeaseLostError, TransitionError
from tamma_trio.models import NewTask, TaskEvent, TaskStatus, check_transition

ACTOR_WORKER = "worker"
ACTOR_DAEMON = "daemon"


class EventKind:
    """Event kinds the stores write; ``record_event`` callers add their own (steps, approvals)."""

    ENQUEUED = "enqueued"
    CLAIMED = "claimed"
    COMPLETED = "completed"
    RETRY_SCHEDULED = "retry_scheduled"
    DEFERRED = "deferred"
    FAILED = "failed"
    RELEASED = "released"
    ORPHAN_RECOVERED = "orphan_recovered"
    LEASE_EXPIRED = "lease_expired"
    QUARANTINED = "quarantined"
    CANCELLED = "cancelled"
    RETRIED = "retried"


class EventSpec(NamedTuple):
    """One audit row before it gets an id and a time."""

    kind: str
    actor: str
    status: TaskStatus | None
    detail: dict[str, Any]


def utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def utc_or_none(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else utc(seconds)


def new_boot_id() -> str:
    return uuid.uuid4().hex


def new_lease_token() -> str:
    """128 random bits as 32 hex digits, like a uuid4's hex without building a UUID per claim."""
    return secrets.token_hex(16)


def lease_expiry(now: float, lease_seconds: float) -> float:
    if lease_seconds <= 0:
        raise ValueError(f"lease_seconds must be positive, got {lease_seconds!r}")
    return now + lease_seconds


def check_page(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must be >= 0, got limit={limit} offset={offset}")


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def repository_of(subject: str) -> str:
    """``owner/name`` of a subject ``owner/name#number``."""
    return subject.partition("#")[0]


def contains_text(haystack: str, needle: str) -> bool:
    """Case-insensitive for ASCII letters only, as SQLite's LIKE is, so backends agree."""
    return needle.translate(_ASCII_LOWER) in haystack.translate(_ASCII_LOWER)


def bucket_index(finished: float, since: float, bucket_seconds: int) -> int:
    return int((finished - since) // bucket_seconds)


def check_operator_retry(status: TaskStatus) -> None:
    """Only failed or cancelled tasks: a queued or running one is already on its way."""
    if status not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        raise TransitionError(
            f"only a failed or cancelled task can be retried; this one is {status.value}"
        )
    check_transition(status, TaskStatus.QUEUED)


PRUNABLE = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


def check_prune(statuses: Collection[TaskStatus], limit: int) -> list[str]:
    """The status values a prune may touch, sorted; ValueError for anything unfinished."""
    unfinished = sorted(status.value for status in set(statuses) - PRUNABLE)
    if unfinished:
        raise ValueError(f"only finished tasks can be pruned, not {', '.join(unfinished)}")
    check_limit(limit)
    return sorted(status.value for status in statuses)


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def quarantine_error(interruptions: int) -> str:
    return f"quarantined: interrupted by {interruptions} daemon crashes"


def lease_quarantine_error(interruptions: int) -> str:
    return f"quarantined: interrupted {interruptions} times, the last by a lease that expired"


def lease_lost(task_id: int, status: TaskStatus) -> LeaseLostError:
    return LeaseLostError(
        f"task {task_id} is no longer held by this lease (it is {status.value} now, "
        "or was re-claimed)"
    )


def oldest_age(now: float, created_at: float | None) -> float | None:
    """Age of the oldest queued task; a wall clock stepping back never gives a negative age."""
    return None if created_at is None else max(0.0, now - created_at)


# --- the events each step appends ------------------------------------------------------------


def enqueued(new: NewTask) -> EventSpec:
    detail: dict[str, Any] = {"priority": int(new.priority)}
    if new.key is not None:
        detail["key"] = new.key
    return EventSpec(EventKind.ENQUEUED, new.actor, TaskStatus.QUEUED, detail)


def claimed(attempt: int, boot_id: str) -> EventSpec:
    detail = {"attempt": attempt, "boot_id": boot_id}
    return EventSpec(EventKind.CLAIMED, ACTOR_WORKER, TaskStatus.IN_PROGRESS, detail)


def completed(attempt: int) -> EventSpec:
    return EventSpec(EventKind.COMPLETED, ACTOR_WORKER, TaskStatus.COMPLETED, {"attempt": attempt})


def retry_scheduled(attempt: int, error: str, not_before: float) -> EventSpec:
    detail = {"attempt": attempt, "error": error, "not_before": utc(not_before).isoformat()}
    return EventSpec(EventKind.RETRY_SCHEDULED, ACTOR_WORKER, TaskStatus.QUEUED, detail)


def deferred(attempt: int, error: str, not_before: float) -> EventSpec:
    """Queued again at a forge's rate-limit reset, the attempt refunded; ``attempt`` is the
    one given back, so the trail still shows every run."""
    detail = {"attempt": attempt, "error": error, "not_before": utc(not_before).isoformat()}
    return EventSpec(EventKind.DEFERRED, ACTOR_WORKER, TaskStatus.QUEUED, detail)


def deferrals_of(events: Sequence[TaskEvent]) -> int:
    """How often the task was deferred since it was last queued afresh (an operator's retry
    starts the count again, as it does the attempts)."""
    count = 0
    for event in events:
        if event.kind == EventKind.RETRIED:
            count = 0
        elif event.kind == EventKind.DEFERRED:
            count += 1
    return count


def ended_for_retry(attempt: int, error: str, not_before: float, defer: bool) -> EventSpec:
    """The event of ``retry_later``: a deferral or a scheduled retry."""
    maker = deferred if defer else retry_scheduled
    return maker(attempt, error, not_before)


def failed(attempt: int, error: str) -> EventSpec:
    detail = {"attempt": attempt, "error": error}
    return EventSpec(EventKind.FAILED, ACTOR_WORKER, TaskStatus.FAILED, detail)


def released(reason: str) -> EventSpec:
    return EventSpec(EventKind.RELEASED, ACTOR_WORKER, TaskStatus.QUEUED, {"reason": reason})


def orphan_outcome(
    previous_owner: str | None, interruptions: int, quarantine_after: int
) -> EventSpec:
    """Requeue after a crash, or quarantine once the task has crashed the daemon too often."""
    detail = {"previous_owner": previous_owner, "interruptions": interruptions}
    if interruptions >= quarantine_after:
        return EventSpec(EventKind.QUARANTINED, ACTOR_DAEMON, TaskStatus.FAILED, detail)
    return EventSpec(EventKind.ORPHAN_RECOVERED, ACTOR_DAEMON, TaskStatus.QUEUED, detail)


def lease_expired_outcome(
    previous_owner: str | None, expired_at: float, interruptions: int, quarantine_after: int
) -> EventSpec:
    """Requeue a task whose holder stopped renewing its lease (hung, partitioned, or dead), or
    quarantine it like a crash orphan: a lease that keeps expiring is the same poison."""
    detail = {
        "previous_owner": previous_owner,
        "lease_expires": utc(expired_at).isoformat(),
        "interruptions": interruptions,
    }
    if interruptions >= quarantine_after:
        detail["cause"] = EventKind.LEASE_EXPIRED
        return EventSpec(EventKind.QUARANTINED, ACTOR_DAEMON, TaskStatus.FAILED, detail)
    return EventSpec(EventKind.LEASE_EXPIRED, ACTOR_DAEMON, TaskStatus.QUEUED, detail)


def cancelled(previous: TaskStatus, actor: str) -> EventSpec:
    detail = {"previous_status": previous.value}
    return EventSpec(EventKind.CANCELLED, actor, TaskStatus.CANCELLED, detail)


def retried(previous: TaskStatus, actor: str) -> EventSpec:
    detail = {"previous_status": previous.value}
    return EventSpec(EventKind.RETRIED, actor, TaskStatus.QUEUED, detail)
