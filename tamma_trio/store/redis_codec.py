"""What the Redis store's scripts take and give back: task hashes, event envelopes, arguments.

Conversions run on the trio thread, outside the worker thread that waits on the socket, like
the SQLite store's rows. Times are sent as ``repr`` of the float, which reads back to the same
float, so a time stored by one daemon compares equal in another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tamma_trio.errors import StoreError, TaskNotFoundError
from tamma_trio.models import (
    NewTask,
    Task,
    TaskEvent,
    TaskStatus,
    ThroughputBucket,
    check_transition,
)
from tamma_trio.store import lifecycle
from tamma_trio.store.lifecycle import EventSpec
from tamma_trio.store.sqlite_rows import dumps, loads

SCHEMA_VERSION = "1"

_TIME_FIELDS = ("not_before", "created_at", "started_at", "finished_at", "lease_expires")
_JSON_FIELDS = ("payload", "result", "progress")


def key_base(prefix: str) -> str:
    """``{prefix}:``: the braces make ``prefix`` a hash tag, one cluster slot for the store."""
    return f"{{{prefix}}}:"


def seconds(value: float) -> str:
    return repr(float(value))


def spec_json(spec: EventSpec) -> str:
    status = None if spec.status is None else spec.status.value
    return dumps({"kind": spec.kind, "actor": spec.actor, "status": status, "detail": spec.detail})


def add_arguments(news: Sequence[NewTask]) -> list[str | int]:
    """The seven values per task the add script reads, in its order."""
    values: list[str | int] = []
    for new in news:
        values += [
            new.key or "",
            new.type.value,
            int(new.priority),
            dumps(new.payload),
            new.max_retries,
            new.subject,
            spec_json(lifecycle.enqueued(new)),
        ]
    return values


def task_from_flat(flat: Sequence[str]) -> Task:
    """A Task from a script's HGETALL answer (field, value, field, value...)."""
    fields: dict[str, Any] = dict(zip(flat[::2], flat[1::2], strict=True))
    for name in _TIME_FIELDS:
        if name in fields:
            fields[name] = lifecycle.utc(float(fields[name]))
    for name in _JSON_FIELDS:
        if name in fields:
            fields[name] = loads(fields[name])
    return Task.model_validate(fields)


def event_from_json(task_id: int, text: str) -> TaskEvent:
    envelope = loads(text)
    spec = envelope["spec"]
    detail = spec["detail"]
    if "attempt" in envelope:
        detail["attempt"] = envelope["attempt"]
    status = spec["status"]
    return TaskEvent(
        id=envelope["id"],
        task_id=task_id,
        at=lifecycle.utc(float(envelope["at"])),
        kind=spec["kind"],
        actor=spec["actor"],
        status=None if status is None else TaskStatus(status),
        detail=detail,
    )


def check_leased_answer(task_id: int, answer: Sequence[str]) -> None:
    """Raise what a lease-checked script's refusal means; return on ``{'ok'}``."""
    if answer[0] == "ok":
        return
    if answer[0] == "missing":
        raise TaskNotFoundError(task_id)
    raise lifecycle.lease_lost(task_id, TaskStatus(answer[1]))


def operator_answer(task_id: int, answer: Sequence[Any], target: TaskStatus) -> Task:
    """The task after cancel or retry, or the error their refusal stands for."""
    if answer[0] == "missing":
        raise TaskNotFoundError(task_id)
    if answer[0] == "refused":
        current = TaskStatus(answer[1])
        if target is TaskStatus.QUEUED:
            lifecycle.check_operator_retry(current)
        check_transition(current, target)
    return task_from_flat(answer[1])


def check_schema(found: str | None, where: str) -> None:
    if found is not None and found != SCHEMA_VERSION:
        raise StoreError(
            f"{where} holds a tamma-trio store of schema {found}; this version reads schema "
            f"{SCHEMA_VERSION}"
        )


def throughput_buckets(
    ended: dict[str, list[tuple[str, float]]], since: float, bucket_seconds: int
) -> list[ThroughputBucket]:
    """Counts by bucket of ``ended`` ({status: [(id, finished_at)]}), oldest bucket first."""
    counts: dict[int, dict[str, int]] = {}
    for status, tasks in ended.items():
        for _id, finished in tasks:
            bucket = counts.setdefault(lifecycle.bucket_index(finished, since, bucket_seconds), {})
            bucket[status] = bucket.get(status, 0) + 1
    return [
        ThroughputBucket(start=lifecycle.utc(since + index * bucket_seconds), **counts[index])
        for index in sorted(counts)
    ]
