"""Rows of the SQLite store and the models they stand for: column lists and conversions.

Conversions run on the caller's (trio) thread, not the writer thread: the writer is the
bottleneck of the store and SQLite releases the GIL while it executes, so JSON encoding and
model validation done by the caller overlap with the writer's SQL instead of queueing behind it.
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple

import pydantic_core
from pydantic import ValidationError as PydanticValidationError

from tamma_trio.errors import StoreError, TaskNotFoundError, first_problem
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


class UndecodableText(str):
    """TEXT that SQLite holds as invalid UTF-8, shown with \\x escapes, with the decode error.

    Another process or an older version can write such bytes; sqlite3's own decoding would raise
    for the whole query, so one bad row would fail every claim and every list.
    """

    reason: str


def decode_text(raw: bytes) -> str:
    """The connection's text_factory: UTF-8, or an UndecodableText the row decoder reports."""
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        text = UndecodableText(raw.decode(errors="backslashreplace"))
        text.reason = f"invalid UTF-8 ({exc.reason} at byte {exc.start})"
        return text


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 rather than \\u escapes; pydantic-core's encoder (faster than the json
    module's) because every task writes a result and two events."""
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

    Validating a plain dict costs no more than model_construct, which skips validation yet is
    slow (bench/store.py's hot path shows it), so rows are validated. Times are
    converted here, not by pydantic, whose epoch parsing gives its own tzinfo class instead of
    ``datetime.UTC``. A row that cannot be read becomes a Task saying why (``undecodable``), so
    it fails alone instead of failing every claim and list it is part of.
    """
    fields = dict(zip(_TASK_FIELDS, row, strict=True))
    for name in _TIME_FIELDS:
        if fields[name] is not None:
            fields[name] = lifecycle.utc(fields[name])
    try:
        _check_text(fields)
        for name in _JSON_FIELDS:
            fields[name] = _json_column(name, fields[name])
        return Task.model_validate(fields)
    except ValueError as exc:
        return _damaged_task(fields, describe_decode_error(exc))


_JSON_FIELDS = ("payload", "progress", "result")
_EMPTY_JSON: dict[str, Any] = {"payload": {}, "progress": {}, "result": None}


def _check_text(fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if type(value) is UndecodableText:
            raise ValueError(f"{name}: {value.reason}")


def _json_column(name: str, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return loads(text)
    except ValueError as exc:
        raise ValueError(f"{name}: not JSON ({exc})") from None


def describe_decode_error(exc: ValueError) -> str:
    """One line: the column and what is wrong with it."""
    if isinstance(exc, PydanticValidationError):
        return first_problem(exc)[1]
    return str(exc)


def _damaged_task(fields: dict[str, Any], reason: str) -> Task:
    """The readable part of a row that is not a Task: JSON columns emptied, text kept escaped."""
    readable = {
        name: str(value) if isinstance(value, str) else value for name, value in fields.items()
    }
    readable.update(_EMPTY_JSON, undecodable=reason)
    try:
        return Task.model_validate(readable)
    except PydanticValidationError as exc:  # a type or status this version does not know
        task_id = fields["id"]
        raise StoreError(f"task {task_id} cannot be read: {describe_decode_error(exc)}") from None


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, str) else value


def event_from_row(row: Row) -> TaskEvent:
    """An event; a detail that is not JSON is replaced by the decode error, so the trail of a
    damaged task still reads."""
    event_id, task_id, at, kind, actor, status, detail = row
    try:
        if type(detail) is UndecodableText:
            raise ValueError(f"detail: {detail.reason}")
        detail_value = _json_column("detail", detail)
        if not isinstance(detail_value, dict):
            raise ValueError("detail: not a JSON object")
    except ValueError as exc:
        detail_value = {"undecodable": str(exc)}
    return TaskEvent(
        id=event_id,
        task_id=task_id,
        at=lifecycle.utc(at),
        kind=str(kind),
        actor=str(actor),
        status=None if status is None else TaskStatus(status),
        detail=detail_value,
    )


def append_event(conn: sqlite3.Connection, task_id: int, event: EventRow) -> None:
    conn.execute(INSERT_EVENT, (task_id, *event))


def status_of(conn: sqlite3.Connection, task_id: int) -> TaskStatus:
    """The task's status, or TaskNotFoundError."""
    row = conn.execute(_SELECT_STATUS, (task_id,)).fetchone()
    if row is None:
        raise TaskNotFoundError(task_id)
    return TaskStatus(row[0])
