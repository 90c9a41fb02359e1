"""A task's DynamoDB item: the task, its event trail and a version, changed as one value.

The trail lives in the task's own item, so a status change and its event are one conditional
write (``ver`` fences it) instead of a two-table transaction at twice the write cost. The price is
DynamoDB's 400 KB item limit on a task's payload plus trail, far above what a task records.

Attributes: ``id``, ``ver``, ``status``, ``task_type`` and ``due_at`` (index keys), ``doc`` (the
Task as JSON), ``trail`` (events as JSON), ``lease_token``, ``msg_id`` (the SQS message the
current lease was claimed with; any other message for a running task is a duplicate), and
``unsent``/``unsent_at`` while the record may lack a message (the sweeper's index).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from tamma_trio.models import Task, TaskEvent, TaskStatus
from tamma_trio.store import lifecycle
from tamma_trio.store.lifecycle import EventSpec

Item = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Record:
    """One task as stored: ``ver`` counts writes, ``trail`` holds events as JSON-ready dicts."""

    task: Task
    trail: tuple[dict[str, Any], ...]
    ver: int
    msg_id: str | None = None
    unsent_at: float | None = None

    def change(
        self, changes: dict[str, Any], spec: EventSpec | None, now: float, **fields: Any
    ) -> Record:
        """The next version: ``changes`` applied to the task, ``spec``'s event appended."""
        task = self.task.model_copy(update=changes) if changes else self.task
        trail = self.trail if spec is None else (*self.trail, self._event(spec, now))
        return replace(self, task=task, trail=trail, ver=self.ver + 1, **fields)

    def events(self) -> list[TaskEvent]:
        return [TaskEvent.model_validate(event) for event in self.trail]

    def _event(self, spec: EventSpec, now: float) -> dict[str, Any]:
        event = TaskEvent(
            id=len(self.trail) + 1,
            task_id=self.task.id,
            at=lifecycle.utc(now),
            kind=spec.kind,
            actor=spec.actor,
            status=spec.status,
            detail=spec.detail,
        )
        return event.model_dump(mode="json")


def new_record(task: Task, spec: EventSpec, now: float) -> Record:
    """A freshly added task: version 1, its enqueued event, not yet known to be sent."""
    return Record(task=task, trail=(), ver=0, unsent_at=now).change({}, spec, now)


def due_at(task: Task) -> float:
    """The time the by_due index sorts on: when it is due, when its lease ends, when it ended."""
    if task.status is TaskStatus.QUEUED:
        return task.not_before.timestamp()
    if task.status is TaskStatus.IN_PROGRESS and task.lease_expires is not None:
        return task.lease_expires.timestamp()
    return (task.finished_at or task.created_at).timestamp()


def to_item(record: Record) -> Item:
    task = record.task
    item: Item = {
        "id": {"N": str(task.id)},
        "ver": {"N": str(record.ver)},
        "status": {"S": task.status.value},
        "task_type": {"S": task.type.value},
        "subject": {"S": task.subject},
        "due_at": {"N": repr(due_at(task))},
        "doc": {"S": task.model_dump_json()},
        "trail": {"S": json.dumps(record.trail, separators=(",", ":"))},
    }
    if task.lease_token is not None:
        item["lease_token"] = {"S": task.lease_token}
    if record.msg_id is not None:
        item["msg_id"] = {"S": record.msg_id}
    if record.unsent_at is not None:
        item["unsent"] = {"S": "1"}
        item["unsent_at"] = {"N": repr(record.unsent_at)}
    return item


def from_item(item: dict[str, Any]) -> Record:
    unsent = item.get("unsent_at")
    return Record(
        task=task_from_item(item),
        trail=tuple(json.loads(item["trail"]["S"])),
        ver=int(item["ver"]["N"]),
        msg_id=item["msg_id"]["S"] if "msg_id" in item else None,
        unsent_at=float(unsent["N"]) if unsent else None,
    )


def task_from_item(item: dict[str, Any]) -> Task:
    """The task alone, from a full item or an index entry that projects ``doc``."""
    return Task.model_validate_json(item["doc"]["S"])


def task_key(task_id: int) -> Item:
    return {"id": {"N": str(task_id)}}
