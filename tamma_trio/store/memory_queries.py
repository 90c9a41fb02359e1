"""The MemoryStore's reads for lists and charts: plain functions over the stored tasks.

Kept apart from memory.py, which holds the state changes; each answers exactly what the SQLite
and Redis stores answer (the contract tests compare them), by scanning, since a memory store
is for tests and throw-away daemons.
"""

from __future__ import annotations

from collections.abc import Iterable

import pydantic_core

from tamma_trio.models import Task, TaskPriority, TaskStatus, TaskType, ThroughputBucket
from tamma_trio.store import lifecycle
from tamma_trio.store.base import TEXT_SEARCH_WINDOW

_ENDED = (TaskStatus.COMPLETED, TaskStatus.FAILED)


def matching_tasks(
    tasks: Iterable[Task],
    *,
    status: TaskStatus | None,
    task_type: TaskType | None,
    repository: str | None,
    text: str | None,
    before: int | None,
) -> list[Task]:
    """The tasks that pass the filters, newest first (not yet paged)."""
    newest_first = sorted(tasks, key=lambda t: t.id, reverse=True)
    matching = [
        t
        for t in newest_first
        if (status is None or t.status == status)
        and (task_type is None or t.type == task_type)
        and (repository is None or lifecycle.repository_of(t.subject) == repository)
        and (before is None or t.id < before)
    ]
    if text is None:
        return matching
    return [t for t in matching[:TEXT_SEARCH_WINDOW] if _contains(t, text)]


def throughput(tasks: Iterable[Task], since: float, bucket_seconds: int) -> list[ThroughputBucket]:
    counts: dict[int, dict[str, int]] = {}
    for task in tasks:
        finished = task.finished_at
        if finished is None or finished.timestamp() < since or task.status not in _ENDED:
            continue
        index = lifecycle.bucket_index(finished.timestamp(), since, bucket_seconds)
        bucket = counts.setdefault(index, {})
        bucket[task.status.value] = bucket.get(task.status.value, 0) + 1
    return [
        ThroughputBucket(start=lifecycle.utc(since + index * bucket_seconds), **counts[index])
        for index in sorted(counts)
    ]


def queued_by_priority(tasks: Iterable[Task]) -> dict[TaskPriority, int]:
    counts = dict.fromkeys(TaskPriority, 0)
    for task in tasks:
        if task.status is TaskStatus.QUEUED:
            counts[task.priority] += 1
    return counts


def _contains(task: Task, text: str) -> bool:
    """The payload, the error or the result, as the SQLite store keeps them (compact JSON)."""
    result = "" if task.result is None else pydantic_core.to_json(task.result).decode()
    payload = pydantic_core.to_json(task.payload).decode()
    return any(
        lifecycle.contains_text(where, text) for where in (payload, task.error or "", result)
    )
