"""The webhook deliveries log on AWS: one item per (forge, delivery id) in the keys table.

The item is written with a conditional put after the delivery's tasks, so a redelivery finds
it and adds nothing; the tasks themselves are idempotent by their keys, which covers a crash
between the two. Listing and pruning scan the keys table (DynamoDB has no cheaper way to list
one kind of item there without another index); the log is small and pruned by age.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tamma_trio.delivery import Delivery, DeliveryRecord
from tamma_trio.models import NewTask, Task
from tamma_trio.store import lifecycle
from tamma_trio.store.aws import intake
from tamma_trio.store.aws.messages import Messages
from tamma_trio.store.aws.tables import Tables

PREFIX = "delivery#"


def _key(forge: str, delivery_id: str) -> str:
    return f"{PREFIX}{forge}#{delivery_id}"


async def add_delivery(
    tables: Tables,
    messages: Messages,
    record: DeliveryRecord,
    news: Sequence[NewTask],
    now: float,
) -> tuple[Delivery, list[tuple[Task, bool]]]:
    known = await get_delivery(tables, record.forge, record.delivery_id)
    if known is not None:
        return known, []
    added = await intake.add_many(tables, messages, news, now)
    [number] = await tables.next_ids(1, counter="counter#delivery")
    delivery = Delivery(
        **record.model_dump(exclude={"task_ids"}),
        task_ids=(*record.task_ids, *(task.id for task, _ in added)),
        id=number,
        received_at=lifecycle.utc(now),
    )
    item = {
        "k": {"S": _key(record.forge, record.delivery_id)},
        "doc": {"S": delivery.model_dump_json()},
        "received_at": {"N": repr(now)},
    }
    if await tables.put_key(item, "attribute_not_exists(k)"):
        return delivery, added
    raced = await get_delivery(tables, record.forge, record.delivery_id)
    return (raced or delivery), []


async def get_delivery(tables: Tables, forge: str, delivery_id: str) -> Delivery | None:
    item = await tables.get_key(_key(forge, delivery_id))
    return Delivery.model_validate_json(item["doc"]["S"]) if item else None


async def list_deliveries(tables: Tables, limit: int, offset: int) -> list[Delivery]:
    items = await _all(tables)
    newest = sorted(
        (Delivery.model_validate_json(item["doc"]["S"]) for item in items),
        key=lambda d: d.id,
        reverse=True,
    )
    return newest[offset : offset + limit]


async def prune_deliveries(tables: Tables, before: float) -> int:
    pruned = 0
    for item in await _all(tables):
        if float(item["received_at"]["N"]) < before:
            gone = await tables.delete_key(
                item["k"]["S"], "received_at = :r", {":r": item["received_at"]}
            )
            pruned += gone is not None
    return pruned


async def _all(tables: Tables) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": tables.keys,
        "FilterExpression": "begins_with(k, :p)",
        "ExpressionAttributeValues": {":p": {"S": PREFIX}},
    }
    while True:
        answer = await tables.runner.run("listing deliveries", partial(tables.db.scan, **request))
        items.extend(answer.get("Items", []))
        if not answer.get("LastEvaluatedKey"):
            return items
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
