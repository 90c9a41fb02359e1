"""The reads of the AWS store: lists, counts and due times from the task table's indexes.

Indexes are eventually consistent on AWS (a change shows within about a second), so `tasks list`
and the stats may trail a write by that much; ``get`` and ``events`` read the record itself.
"""

from __future__ import annotations

from tamma_trio.models import QueueStats, Task, TaskStatus, TaskType
from tamma_trio.store import lifecycle
from tamma_trio.store.aws.names import INDEX_BY_DUE, INDEX_BY_STATUS, INDEX_BY_TYPE
from tamma_trio.store.aws.records import task_from_item
from tamma_trio.store.aws.tables import Tables


async def list_tasks(
    tables: Tables, status: TaskStatus | None, type: TaskType | None, limit: int, offset: int
) -> list[Task]:
    """Newest first: one index partition, or every status partition merged when unfiltered."""
    if limit == 0:
        return []
    wanted = offset + limit
    if status is not None:
        tasks = await _newest(tables, INDEX_BY_STATUS, "status", status.value, wanted, type)
    elif type is not None:
        tasks = await _newest(tables, INDEX_BY_TYPE, "task_type", type.value, wanted, None)
    else:
        tasks = []
        for each in TaskStatus:
            tasks += await _newest(tables, INDEX_BY_STATUS, "status", each.value, wanted, None)
        tasks.sort(key=lambda t: t.id, reverse=True)
    return tasks[offset:wanted]


async def _newest(
    tables: Tables, index: str, name: str, value: str, limit: int, type: TaskType | None
) -> list[Task]:
    params: dict[str, object] = {
        "IndexName": index,
        "KeyConditionExpression": "#h = :h",
        "ExpressionAttributeNames": {"#h": name},
        "ExpressionAttributeValues": {":h": {"S": value}},
        "ScanIndexForward": False,
    }
    if type is not None:
        params["FilterExpression"] = "task_type = :t"
        params["ExpressionAttributeValues"] = {":h": {"S": value}, ":t": {"S": type.value}}
    items = await tables.query(limit=limit, **params)
    return [task_from_item(item) for item in items]


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
