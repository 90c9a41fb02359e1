"""Rows of the SQLite store to model objects and back: the column lists and the conversions."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tamma_trio.errors import TaskNotFoundError
from tamma_trio.models import Task, TaskEvent, TaskStatus
from tamma_trio.store import lifecycle
from tamma_trio.store.lifecycle import EventSpec

TASK_COLUMNS = (
    "id, type, priority, payload, status, attempts, max_retries, not_before, created_at, "
    "started_at, finished_at, error, result, subject, key, interruptions, lease_owner, "
    "lease_token, lease_expires, progress"
)

_TASK_FIELDS = tuple(TASK_COLUMNS.split(", "))
_TIME_FIELDS = ("not_before", "created_at", "started_at", "finished_at", "lease_expires")

EVENT_COLUMNS = "id, task_id, at, kind, actor, status, detail"

INSERT_EVENT = (
    "INSERT INTO task_events (task_id, at, kind, actor, status, detail) VALUES (?, ?, ?, ?, ?, ?)"
)

_SELECT_STATUS = "SELECT status FROM tasks WHERE id = ?"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def task_from_row(row: tuple[Any, ...]) -> Task:
    """Validate a row into a Task, with times as ``datetime.UTC`` datetimes like every backend.

    Measured here (bench/store.py's hot path): validating a plain dict costs no more than
    model_construct, which skips validation yet is slow, so rows are validated. Times are
    converted here, not by pydantic, whose epoch parsing gives its own tzinfo class instead of
    ``datetime.UTC``.
    """
    fields = dict(zip(_TASK_FIELDS, row, strict=True))
    for name in _TIME_FIELDS:
        if fields[name] is not None:
            fields[name] = lifecycle.utc(fields[name])
    fields["payload"] = json.loads(fields["payload"])
    fields["progress"] = json.loads(fields["progress"])
    if fields["result"] is not None:
        fields["result"] = json.loads(fields["result"])
    return Task.model_validate(fields)


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
