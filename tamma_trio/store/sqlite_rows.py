"""Rows of the SQLite store and the models they stand for: column lists and conversions.

Conversions run on the caller's (trio) thread, not the writer thread: the writer is the
bottleneck of the store and SQLite releases the GIL while it executes, so JSON encoding and
model validation done by the caller overlap with the writer's SQL instead of queueing behind it.
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple

import pydantic_core

from tamma_trio.errors import TaskNotFoundError
from tamma_trio.models import NewTask, Task, TaskEvent, TaskStatus
from tamma_trio.store import lifecycle
from tamma_trio.store.lifecycle import EventSpec

Row = tuple[Any, ...]

TASK_COLUMNS = (
    "id, type, priority, payload, status, attempts, max_retries, not_before, created_at, "
    "started_at, finished_at, error, result, subject, key, interruptions, lease_owner, "
    "lease_token, lease_expires, progress"
)
_TASK_FIELDS = tuple(TASK_COLUMNS.split(", "))
_TIME_FIELDS = ("not_before", "created_at", "started_at", "finished_at", "lease_expires")
_ID, _ATTEMPTS = _TASK_FIELDS.index("id"), _TASK_FIELDS.index("attempts")

EVENT_COLUMNS = "id, task_id, at, kind, actor, status, detail"

INSERT_EVENT = (
    "INSERT INTO task_events (task_id, at, kind, actor, status, detail) VALUES (?, ?, ?, ?, ?, ?)"
)

_SELECT_STATUS = "SELECT status FROM tasks WHERE id = ?"


class EventRow(NamedTuple):
    """An event ready to insert, short of its task id: (at, kind, actor, status, detail JSON)."""

    at: float
    kind: str
    actor: str
    status: str | None
    detail: str


class NewTaskRow(NamedTuple):
    """A NewTask encoded for INSERT, with its "enqueued" event."""

    key: str | None
    values: tuple[Any, ...]
    event: EventRow


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 rather than \\u escapes; pydantic-core's encoder (about 5x faster
    than the json module's) because every task writes a result and two events."""
    return pydantic_core.to_json(value).decode()


def loads(text: str) -> Any:
    return pydantic_core.from_json(text)


def event_row(now: float, spec: EventSpec) -> EventRow:
    status = None if spec.status is None else spec.status.value
    return EventRow(now, spec.kind, spec.actor, status, dumps(spec.detail))


def new_task_row(new: NewTask, now: float) -> NewTaskRow:
    values = (
        new.type.value,
        int(new.priority),
        dumps(new.payload),
        new.max_retries,
        now,
        now,
        new.subject,
        new.key,
    )
    return NewTaskRow(new.key, values, event_row(now, lifecycle.enqueued(new)))


def task_id_of(row: Row) -> int:
    return int(row[_ID])


def attempts_of(row: Row) -> int:
    return int(row[_ATTEMPTS])


def task_from_row(row: Row) -> Task:
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
    fields["payload"] = loads(fields["payload"])
    fields["progress"] = loads(fields["progress"])
    if fields["result"] is not None:
        fields["result"] = loads(fields["result"])
    return Task.model_validate(fields)


def event_from_row(row: Row) -> TaskEvent:
    event_id, task_id, at, kind, actor, status, detail = row
    return TaskEvent(
        id=event_id,
        task_id=task_id,
        at=lifecycle.utc(at),
        kind=kind,
        actor=actor,
        status=None if status is None else TaskStatus(status),
        detail=loads(detail),
    )


def append_event(conn: sqlite3.Connection, task_id: int, event: EventRow) -> None:
    conn.execute(INSERT_EVENT, (task_id, *event))


def status_of(conn: sqlite3.Connection, task_id: int) -> TaskStatus:
    """The task's status, or TaskNotFoundError."""
    row = conn.execute(_SELECT_STATUS, (task_id,)).fetchone()
    if row is None:
        raise TaskNotFoundError(task_id)
    return TaskStatus(row[0])
