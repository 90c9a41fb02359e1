"""Retention on AWS: delete old finished tasks, oldest finished first, with their keys.

The keys-only index sorts a finished task by its finished_at (``due_at``), so finding the oldest
reads small index entries only; each delete is conditional on the status it was found in, so a
task an operator retried meanwhile stays.
"""

from __future__ import annotations

from collections.abc import Collection

from tamma_trio.models import TaskStatus
from tamma_trio.store import lifecycle
from tamma_trio.store.aws.names import INDEX_BY_DUE
from tamma_trio.store.aws.tables import Tables


async def prune(
    tables: Tables,
    finished_before: float,
    statuses: Collection[TaskStatus],
    limit: int,
    *,
    dry_run: bool,
) -> list[int]:
    wanted = lifecycle.check_prune(statuses, limit)
    old: list[tuple[float, int]] = []
    for status in wanted:
        items = await tables.query(
            limit=limit,
            IndexName=INDEX_BY_DUE,
            KeyConditionExpression="#h = :h AND due_at < :c",
            ExpressionAttributeNames={"#h": "status"},
            ExpressionAttributeValues={":h": {"S": status}, ":c": {"N": repr(finished_before)}},
        )
        old += [(float(item["due_at"]["N"]), int(item["id"]["N"])) for item in items]
    ids = [task_id for _, task_id in sorted(old)[:limit]]
    if dry_run:
        return ids
    pruned = []
    for record in (await tables.get_many(ids)).values():
        task = record.task
        if not await tables.delete(task.id, task.status.value):
            continue
        if task.key is not None:
            await tables.delete_key(
                f"key#{task.key}", "task_id = :id", {":id": {"N": str(task.id)}}
            )
        pruned.append(task.id)
    return [task_id for task_id in ids if task_id in pruned]
