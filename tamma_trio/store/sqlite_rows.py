"""Rows of the SQLite store to model objects and back: the column lists and the conversions."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tamma_trio.errors import TaskNotFoundError
from tamma_trio.models import Task, TaskEvent, TaskPriority, TaskStatus, TaskType
from tamma_trio.store import lifecycle
from tamma_trio.store.lifecycle import EventSpec

TASK_COLUMNS = (
    "id, type, priority, payload, status, attempts, max_retries, not_before, created_at, "
    "started_at, finished_at, error, result, subject, key, interruptions, lease_owner, "
    "lease_token, lease_expires, progress"
)

EVENT_COLUMNS = "id, task_id, at, kind, actor, status, detail"

INSERT_EVENT = (
    "INSERT INTO task_events (task_id, at, kind, actor, status, detail) VALUES (?, ?, ?, ?, ?, ?)"
)

_SELECT_STATUS = "SELECT status FROM tasks WHERE id = ?"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def task_from_row(row: tuple[Any, ...]) -> Task:
    """Rebuild a Task without re-validating it.

    Every value was validated on its way in (NewTask, typed store methods), and this runs for
    every task claimed and completed, so it uses model_construct: measured about 3x cheaper
    than validation on the claim+complete hot path.
    """
    (
        task_id,
        task_type,
        priority,
        payload,
        status,
        attempts,
        max_retries,
        not_before,
        created_at,
        started_at,
        finished_at,
        error,
        result,
        subject,
        key,
        interruptions,
        lease_owner,
        lease_token,
        lease_expires,
        progress,
    ) = row
    return Task.model_construct(
        id=task_id,
        type=TaskType(task_type),
        priority=TaskPriority(priority),
        payload=json.loads(payload),
        status=TaskStatus(status),
        attempts=attempts,
        max_retries=max_retries,
        not_before=lifecycle.utc(not_before),
        created_at=lifecycle.utc(created_at),
        started_at=lifecycle.utc_or_none(started_at),
        finished_at=lifecycle.utc_or_none(finished_at),
        error=error,
        result=None if result is None else json.loads(result),
        subject=subject,
        key=key,
        interruptions=interruptions,
        lease_owner=lease_owner,
        lease_token=lease_token,
        lease_expires=lifecycle.utc_or_none(lease_expires),
        progress=json.loads(progress),
    )


def event_from_row(row: tuple[Any, ...]) -> TaskEvent:
    event_id, task_id, at, kind, actor, status, detail = row
    return TaskEvent(
        id=event_id,
        task_id=task_id,
        at=lifecycle.utc(at),
        kind=kind,
        actor=actor,
        status=None if status is None else TaskStatus(status),
        detail=json.loads(detail),
    )


def event_params(task_id: int, now: float, spec: EventSpec) -> tuple[Any, ...]:
    status = None if spec.status is None else spec.status.value
    return (task_id, now, spec.kind, spec.actor, status, dumps(spec.detail))


def append_event(conn: sqlite3.Connection, task_id: int, now: float, spec: EventSpec) -> None:
    conn.execute(INSERT_EVENT, event_params(task_id, now, spec))


def status_of(conn: sqlite3.Connection, task_id: int) -> TaskStatus:
    """The task's status, or TaskNotFoundError."""
    row = conn.execute(_SELECT_STATUS, (task_id,)).fetchone()
    if row is None:
        raise TaskNotFoundError(task_id)
    return TaskStatus(row[0])
