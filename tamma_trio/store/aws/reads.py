"""The reads of the AWS store: lists, counts and due times from the task table's indexes.

Indexes are eventually consistent on AWS (a change shows within about a second), so `tasks list`
and the stats may trail a write by that much; ``get`` and ``events`` read the record itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic_core

from tamma_trio.models import (
    QueueStats,
    Task,
    TaskPriority,
    TaskStatus,
    TaskType,
    ThroughputBucket,
)
from tamma_trio.store import lifecycle
from tamma_trio.store.aws.names import (
    INDEX_BY_DUE,
    INDEX_BY_STATUS,
    INDEX_BY_SUBJECT,
    INDEX_BY_TYPE,
)
from tamma_trio.store.aws.records import task_from_item
from tamma_trio.store.aws.tables import Tables
from tamma_trio.store.base import TEXT_SEARCH_WINDOW


@dataclass(frozen=True)
class TaskQuery:
    """The filters of ``list_tasks``."""

    status: TaskStatus | None = None
    type: TaskType | None = None
    repository: str | None = None
    text: str | None = None
    before: int | None = None

    def keeps(self, task: Task) -> bool:
        """The filters an index key does not apply."""
        return (self.type is None or task.type == self.type) and (
            self.repository is None or lifecycle.repository_of(task.subject) == self.repository
        )


async def list_tasks(tables: Tables, query: TaskQuery, limit: int, offset: int) -> list[Task]:
    """Newest first: one index partition, or every status partition merged when unfiltered.

    The repository and text filters read the task itself, so the index is paged until enough
    tasks pass them; a text search reads at most TEXT_SEARCH_WINDOW of them, like every store.
    """
    if limit == 0:
        return []
    window = TEXT_SEARCH_WINDOW if query.text is not None else offset + limit
    if query.status is not None:
        partitions = [(INDEX_BY_STATUS, "status", query.status.value)]
    elif query.type is not None:
        partitions = [(INDEX_BY_TYPE, "task_type", query.type.value)]
    else:
        partitions = [(INDEX_BY_STATUS, "status", status.value) for status in TaskStatus]
    tasks: list[Task] = []
    for partition in partitions:
        tasks += await _newest(tables, partition, query, window)
    tasks = sorted(tasks, key=lambda t: t.id, reverse=True)[:window]
    if query.text is not None:
        tasks = [task for task in tasks if _contains(task, query.text)]
    return tasks[offset : offset + limit]


async def _newest(
    tables: Tables, partition: tuple[str, str, str], query: TaskQuery, wanted: int
) -> list[Task]:
    index, name, value = partition
    condition = "#h = :h"
    values: dict[str, Any] = {":h": {"S": value}}
    if query.before is not None:
        condition += " AND id < :b"
        values[":b"] = {"N": str(query.before)}
    found: list[Task] = []
    after: dict[str, Any] | None = None
    while len(found) < wanted:
        items, after = await tables.page(
            after,
            IndexName=index,
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#h": name},
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
        )
        found += [t for t in map(task_from_item, items) if query.keeps(t)]
        if after is None:
            break
    return found[:wanted]


def _contains(task: Task, text: str) -> bool:
    """The payload, the error or the result (compact JSON): what the other stores search."""
    result = "" if task.result is None else pydantic_core.to_json(task.result).decode()
    payload = pydantic_core.to_json(task.payload).decode()
    return any(
        lifecycle.contains_text(field, text) for field in (payload, task.error or "", result)
    )


async def throughput(tables: Tables, since: float, bucket_seconds: int) -> list[ThroughputBucket]:
    """Completed and failed tasks per bucket, from the keys-only index (due_at = finished_at)."""
    counts: dict[int, dict[str, int]] = {}
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
        items = await tables.query(
            IndexName=INDEX_BY_DUE,
            KeyConditionExpression="#h = :h AND due_at >= :s",
            ExpressionAttributeNames={"#h": "status"},
            ExpressionAttributeValues={":h": {"S": status.value}, ":s": {"N": repr(since)}},
        )
        for item in items:
            index = lifecycle.bucket_index(float(item["due_at"]["N"]), since, bucket_seconds)
            bucket = counts.setdefault(index, {})
            bucket[status.value] = bucket.get(status.value, 0) + 1
    return [
        ThroughputBucket(start=lifecycle.utc(since + index * bucket_seconds), **counts[index])
        for index in sorted(counts)
    ]


async def stats(tables: Tables, now: float) -> QueueStats:
    """Counts from the keys-only index (small entries: the cheap way to count in DynamoDB)."""
    by_status = {s: await tables.count(INDEX_BY_DUE, "status", s.value) for s in TaskStatus}
    oldest = await tables.query(
        limit=1,
        IndexName=INDEX_BY_STATUS,
        KeyConditionExpression="#h = :h",
        ExpressionAttributeNames={"#h": "status"},
        ExpressionAttributeValues={":h": {"S": TaskStatus.QUEUED.value}},
        ScanIndexForward=True,
    )
    created = task_from_item(oldest[0]).created_at.timestamp() if oldest else None
    return QueueStats(
        by_status=by_status,
        queue_depth=by_status[TaskStatus.QUEUED],
        oldest_queued_age=lifecycle.oldest_age(now, created),
    )


async def tasks_of_subject(tables: Tables, subject: str, limit: int) -> list[Task]:
    items = await tables.query(
        limit=limit,
        IndexName=INDEX_BY_SUBJECT,
        KeyConditionExpression="#h = :h",
        ExpressionAttributeNames={"#h": "subject"},
        ExpressionAttributeValues={":h": {"S": subject}},
        ScanIndexForward=False,
    )
    return [task_from_item(item) for item in items]


async def queued_by_priority(tables: Tables) -> dict[TaskPriority, int]:
    """Counted from the queued tasks themselves: a cost that grows with the backlog."""
    counts = dict.fromkeys(TaskPriority, 0)
    items = await tables.query(
        IndexName=INDEX_BY_STATUS,
        KeyConditionExpression="#h = :h",
        ExpressionAttributeNames={"#h": "status"},
        ExpressionAttributeValues={":h": {"S": TaskStatus.QUEUED.value}},
    )
    for item in items:
        counts[task_from_item(item).priority] += 1
    return counts


async def next_due(tables: Tables) -> float | None:
    first = await tables.query(
        limit=1,
        IndexName=INDEX_BY_DUE,
        KeyConditionExpression="#h = :h",
        ExpressionAttributeNames={"#h": "status"},
        ExpressionAttributeValues={":h": {"S": TaskStatus.QUEUED.value}},
        ScanIndexForward=True,
    )
    return float(first[0]["due_at"]["N"]) if first else None
