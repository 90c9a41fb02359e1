"""Enqueue on AWS: write the record, then send its message.

A crash between the two leaves a record marked unsent, which the sweeper sends later. A task with
an idempotency key first takes the key item (a conditional put naming the new id), so two adders
of one key make one task; if the key's first writer died before writing the record, the next one
writes it under the key's id, and the conditional put of the record lets exactly one succeed.
"""

from __future__ import annotations

from collections.abc import Sequence

from tamma_trio.errors import TaskNotFoundError
from tamma_trio.models import NewTask, Task, TaskStatus
from tamma_trio.store import lifecycle
from tamma_trio.store.aws.messages import Messages
from tamma_trio.store.aws.records import Record, new_record
from tamma_trio.store.aws.tables import Tables


async def add_many(
    tables: Tables, messages: Messages, news: Sequence[NewTask], now: float
) -> list[tuple[Task, bool]]:
    """Store each new task as queued (a known key returns its task); then send the messages."""
    ids = iter(await tables.next_ids(len(news))) if news else iter(())
    results: list[tuple[Task, bool]] = []
    fresh: list[Record] = []
    seen: dict[str, Task] = {}
    for new in news:
        if new.key is None:
            record = new_record(_task(next(ids), new, now), lifecycle.enqueued(new), now)
            fresh.append(record)
            results.append((record.task, True))
        elif new.key in seen:
            results.append((seen[new.key], False))
        else:
            task, created = await _add_keyed(tables, new, next(ids), now)
            seen[new.key] = task
            results.append((task, created))
    await tables.put_new_many(fresh)  # fresh ids: nobody else can have written them
    await messages.send((task.id, int(task.priority)) for task, created in results if created)
    return [(task.model_copy(deep=True), created) for task, created in results]


async def _add_keyed(tables: Tables, new: NewTask, task_id: int, now: float) -> tuple[Task, bool]:
    key = f"key#{new.key}"
    item = {"k": {"S": key}, "task_id": {"N": str(task_id)}}
    if not await tables.put_key(item, "attribute_not_exists(k)"):
        known = await tables.get_key(key)
        task_id = int(known["task_id"]["N"]) if known else task_id
        existing = await tables.get(task_id)
        if existing is not None:
            return existing.task, False
    record = new_record(_task(task_id, new, now), lifecycle.enqueued(new), now)
    if await tables.put(record, None):
        return record.task, True
    written = await tables.get(task_id)
    if written is None:
        raise TaskNotFoundError(task_id)
    return written.task, False


def _task(task_id: int, new: NewTask, now: float) -> Task:
    return Task(
        id=task_id,
        type=new.type,
        priority=new.priority,
        payload=new.payload,
        status=TaskStatus.QUEUED,
        max_retries=new.max_retries,
        not_before=lifecycle.utc(now),
        created_at=lifecycle.utc(now),
        subject=new.subject,
        key=new.key,
    )
