"""The SQLite store's operations: plain functions of a connection, run inside a transaction.

The runner (sqlite_runner.py) owns the transaction and its savepoints; these functions only read
and write, and raise TammaError subclasses for the caller. They run on the writer thread, the
store's bottleneck, so they stay close to bare SQL: they take values already encoded and return
raw rows, which the caller turns into models on its own thread (sqlite_rows.py). Statements are
module constants so sqlite3's statement cache prepares each one once per connection. Times
(``now``) come from the caller, read from the store's injected clock on the trio thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from tamma_trio.errors import TaskNotFoundError
from tamma_trio.models import TaskStatus, check_transition
from tamma_trio.store import lifecycle
from tamma_trio.store.sqlite_rows import (
    EVENT_COLUMNS,
    INSERT_EVENT,
    TASK_COLUMNS,
    EventRow,
    NewTaskRow,
    Row,
    append_event,
    attempts_of,
    event_row,
    status_of,
    task_id_of,
)

_SELECT_TASK = f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"
_SELECT_BY_KEY = f"SELECT {TASK_COLUMNS} FROM tasks WHERE key = ?"
_INSERT_TASK = f"""INSERT INTO tasks
    (type, priority, payload, status, max_retries, not_before, created_at, subject, key)
    VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?) RETURNING {TASK_COLUMNS}"""

# Walks tasks_queue in claim order and stops as soon as the caller has enough; the NOT EXISTS
# probe uses tasks_active_subject. INDEXED BY: without ANALYZE statistics the planner prefers
# tasks_by_status here, and a hint that can no longer be honoured fails loudly instead.
DUE_CANDIDATES = """SELECT id, subject FROM tasks AS t INDEXED BY tasks_queue
    WHERE status = 'queued' AND not_before <= ?
    AND NOT EXISTS (SELECT 1 FROM tasks AS r INDEXED BY tasks_active_subject
                    WHERE r.status = 'in_progress' AND r.subject = t.subject)
    ORDER BY priority DESC, id"""
_CLAIM_ONE = f"""UPDATE tasks SET status = 'in_progress', attempts = attempts + 1,
    started_at = ?, lease_owner = ?, lease_token = ?, lease_expires = ?
    WHERE id = ? RETURNING {TASK_COLUMNS}"""

_LEASED = "WHERE id = ? AND lease_token = ? AND status = 'in_progress'"
_NO_LEASE = "lease_owner = NULL, lease_token = NULL, lease_expires = NULL"
_COMPLETE = f"""UPDATE tasks SET status = 'completed', result = ?, error = NULL,
    finished_at = ?, {_NO_LEASE} {_LEASED} RETURNING attempts"""
_RETRY_LATER = f"""UPDATE tasks SET status = 'queued', error = ?, not_before = ?, {_NO_LEASE}
    {_LEASED} RETURNING attempts"""
# RETURNING the attempt given back, so the "deferred" event names it as the other endings do.
_DEFER = f"""UPDATE tasks SET status = 'queued', error = ?, not_before = ?,
    attempts = max(attempts - 1, 0), {_NO_LEASE} {_LEASED} RETURNING attempts + 1"""
_FAIL = f"""UPDATE tasks SET status = 'failed', error = ?, finished_at = ?, {_NO_LEASE}
    {_LEASED} RETURNING attempts"""
_RELEASE = f"""UPDATE tasks SET status = 'queued', attempts = max(attempts - 1, 0),
    not_before = ?, {_NO_LEASE} {_LEASED} RETURNING attempts"""
_SAVE_PROGRESS = f"UPDATE tasks SET progress = ? {_LEASED} RETURNING id"
_EXTEND_LEASE = """UPDATE tasks SET lease_expires = ?
    WHERE lease_token = ? AND status = 'in_progress' RETURNING lease_token"""

_ORPHANS = """SELECT id, lease_owner, interruptions FROM tasks
    WHERE status = 'in_progress' AND lease_owner IS NOT ? ORDER BY id"""
_EXPIRED = """SELECT id, lease_owner, interruptions, lease_expires FROM tasks
    INDEXED BY tasks_by_status
    WHERE status = 'in_progress' AND lease_expires <= ? ORDER BY id"""
_REQUEUE_ORPHAN = f"""UPDATE tasks SET status = 'queued', attempts = max(attempts - 1, 0),
    interruptions = ?, not_before = ?, {_NO_LEASE} WHERE id = ? RETURNING {TASK_COLUMNS}"""
_QUARANTINE = f"""UPDATE tasks SET status = 'failed', attempts = max(attempts - 1, 0),
    interruptions = ?, error = ?, finished_at = ?, {_NO_LEASE}
    WHERE id = ? RETURNING {TASK_COLUMNS}"""

_CANCEL = f"""UPDATE tasks SET status = 'cancelled', finished_at = ?, {_NO_LEASE}
    WHERE id = ? RETURNING {TASK_COLUMNS}"""
_RETRY = f"""UPDATE tasks SET status = 'queued', attempts = 0, interruptions = 0, error = NULL,
    result = NULL, finished_at = NULL, not_before = ? WHERE id = ? RETURNING {TASK_COLUMNS}"""

_COUNTS = "SELECT status, sum(n) FROM task_counts GROUP BY status"
_OLDEST_QUEUED = """SELECT created_at FROM tasks INDEXED BY tasks_by_status
    WHERE status = 'queued' ORDER BY id LIMIT 1"""
_NEXT_DUE = "SELECT min(not_before) FROM tasks INDEXED BY tasks_due WHERE status = 'queued'"
_EVENTS = f"SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = ? ORDER BY id"


# --- intake and reads -----------------------------------------------------------------------


def add_tasks(conn: sqlite3.Connection, news: Sequence[NewTaskRow]) -> list[tuple[Row, bool]]:
    """(row, created) per task; a known key answers with the stored row and writes nothing."""
    return [_add_one(conn, new) for new in news]


def _add_one(conn: sqlite3.Connection, new: NewTaskRow) -> tuple[Row, bool]:
    if new.key is not None:
        known = conn.execute(_SELECT_BY_KEY, (new.key,)).fetchone()
        if known is not None:
            return known, False
    row: Row = conn.execute(_INSERT_TASK, new.values).fetchone()
    append_event(conn, task_id_of(row), new.event)
    return row, True


def get_task(conn: sqlite3.Connection, task_id: int) -> Row:
    row: Row | None = conn.execute(_SELECT_TASK, (task_id,)).fetchone()
    if row is None:
        raise TaskNotFoundError(task_id)
    return row


def list_events(conn: sqlite3.Connection, task_id: int) -> list[Row]:
    status_of(conn, task_id)
    return conn.execute(_EVENTS, (task_id,)).fetchall()


def queue_stats(conn: sqlite3.Connection) -> tuple[dict[str, int], float | None]:
    """Counts by status (from the trigger-kept table) and the oldest queued task's created_at."""
    counts = dict(conn.execute(_COUNTS).fetchall())
    oldest = conn.execute(_OLDEST_QUEUED).fetchone()
    return counts, None if oldest is None else oldest[0]


def next_due(conn: sqlite3.Connection) -> float | None:
    value = conn.execute(_NEXT_DUE).fetchone()[0]
    return None if value is None else float(value)


def record_event(conn: sqlite3.Connection, task_id: int, event: EventRow) -> None:
    status_of(conn, task_id)
    append_event(conn, task_id, event)


# --- the worker's side ----------------------------------------------------------------------


def claim(
    conn: sqlite3.Connection, now: float, limit: int, lease_expires: float, boot_id: str
) -> list[Row]:
    claimed: list[Row] = []
    for task_id in _pick_due(conn, now, limit):
        params = (now, boot_id, lifecycle.new_lease_token(), lease_expires, task_id)
        claimed.append(conn.execute(_CLAIM_ONE, params).fetchone())
    events = [
        (task_id_of(row), *event_row(now, lifecycle.claimed(attempts_of(row), boot_id)))
        for row in claimed
    ]
    conn.executemany(INSERT_EVENT, events)
    return claimed


def _pick_due(conn: sqlite3.Connection, now: float, limit: int) -> list[int]:
    """Ids to claim, in claim order, at most one per subject (also within this batch)."""
    picked: list[int] = []
    subjects: set[str] = set()
    if limit <= 0:
        return picked
    cursor = conn.execute(DUE_CANDIDATES, (now,))
    try:
        for task_id, subject in cursor:
            if subject not in subjects:
                subjects.add(subject)
                picked.append(task_id)
                if len(picked) >= limit:
                    break
    finally:
        cursor.close()
    return picked


def extend_leases(conn: sqlite3.Connection, tokens: Sequence[str], expires: float) -> set[str]:
    held = set()
    for token in tokens:
        row = conn.execute(_EXTEND_LEASE, (expires, token)).fetchone()
        if row is not None:
            held.add(row[0])
    return held


def save_progress(conn: sqlite3.Connection, task_id: int, token: str, progress: str) -> None:
    if conn.execute(_SAVE_PROGRESS, (progress, task_id, token)).fetchone() is None:
        raise lifecycle.lease_lost(task_id, status_of(conn, task_id))


def complete(conn: sqlite3.Connection, task_id: int, token: str, result: str, now: float) -> None:
    attempts = _end_lease(conn, _COMPLETE, (result, now, task_id, token), task_id)
    append_event(conn, task_id, event_row(now, lifecycle.completed(attempts)))


def retry_later(
    conn: sqlite3.Connection,
    task_id: int,
    token: str,
    ending: tuple[str, float, bool],
    now: float,
) -> None:
    """``ending`` is (error, not_before, defer): a deferral refunds the attempt."""
    error, not_before, defer = ending
    sql = _DEFER if defer else _RETRY_LATER
    attempts = _end_lease(conn, sql, (error, not_before, task_id, token), task_id)
    spec = lifecycle.ended_for_retry(attempts, error, not_before, defer)
    append_event(conn, task_id, event_row(now, spec))


def fail(conn: sqlite3.Connection, task_id: int, token: str, error: str, now: float) -> None:
    attempts = _end_lease(conn, _FAIL, (error, now, task_id, token), task_id)
    append_event(conn, task_id, event_row(now, lifecycle.failed(attempts, error)))


def release(conn: sqlite3.Connection, task_id: int, token: str, reason: str, now: float) -> None:
    _end_lease(conn, _RELEASE, (now, task_id, token), task_id)
    append_event(conn, task_id, event_row(now, lifecycle.released(reason)))


def _end_lease(conn: sqlite3.Connection, sql: str, params: tuple[object, ...], task_id: int) -> int:
    """Run a lease-checked update returning the attempt count; LeaseLostError or
    TaskNotFoundError when it matched nothing."""
    row: Row | None = conn.execute(sql, params).fetchone()
    if row is None:
        raise lifecycle.lease_lost(task_id, status_of(conn, task_id))
    return int(row[0])


def recover_orphans(
    conn: sqlite3.Connection, boot_id: str, now: float, quarantine_after: int
) -> list[Row]:
    recovered = []
    for task_id, owner, interruptions in conn.execute(_ORPHANS, (boot_id,)).fetchall():
        count = interruptions + 1
        spec = lifecycle.orphan_outcome(owner, count, quarantine_after)
        error = lifecycle.quarantine_error(count)
        recovered.append(_interrupt(conn, task_id, count, spec, error, now))
    return recovered


def reclaim_expired(conn: sqlite3.Connection, now: float, quarantine_after: int) -> list[Row]:
    reclaimed = []
    for task_id, owner, interruptions, expired_at in conn.execute(_EXPIRED, (now,)).fetchall():
        count = interruptions + 1
        spec = lifecycle.lease_expired_outcome(owner, expired_at, count, quarantine_after)
        error = lifecycle.lease_quarantine_error(count)
        reclaimed.append(_interrupt(conn, task_id, count, spec, error, now))
    return reclaimed


def _interrupt(
    conn: sqlite3.Connection,
    task_id: int,
    interruptions: int,
    spec: lifecycle.EventSpec,
    quarantine_error: str,
    now: float,
) -> Row:
    """Requeue with the attempt refunded, or fail as quarantined, as ``spec`` decided."""
    if spec.status is TaskStatus.FAILED:
        params: tuple[object, ...] = (interruptions, quarantine_error, now, task_id)
        row: Row = conn.execute(_QUARANTINE, params).fetchone()
    else:
        row = conn.execute(_REQUEUE_ORPHAN, (interruptions, now, task_id)).fetchone()
    append_event(conn, task_id, event_row(now, spec))
    return row


# --- operator actions -----------------------------------------------------------------------


def cancel(conn: sqlite3.Connection, task_id: int, actor: str, now: float) -> Row:
    previous = status_of(conn, task_id)
    check_transition(previous, TaskStatus.CANCELLED)
    row: Row = conn.execute(_CANCEL, (now, task_id)).fetchone()
    append_event(conn, task_id, event_row(now, lifecycle.cancelled(previous, actor)))
    return row


def retry(conn: sqlite3.Connection, task_id: int, actor: str, now: float) -> Row:
    previous = status_of(conn, task_id)
    lifecycle.check_operator_retry(previous)
    row: Row = conn.execute(_RETRY, (now, task_id)).fetchone()
    append_event(conn, task_id, event_row(now, lifecycle.retried(previous, actor)))
    return row
