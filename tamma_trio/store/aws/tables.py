"""DynamoDB reads and conditional writes of task records and coordination items.

Every write of a record is conditional on the version it was read at (or on the item being new),
so two daemons, or a daemon and the CLI, never overwrite each other's change: the loser re-reads.
The keys table holds the task id counter, one item per idempotency key and one lock per subject
with a running task.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tamma_trio.store.aws.client import Runner, as_store_error, error_code
from tamma_trio.store.aws.names import INDEX_BY_DUE, INDEX_UNSENT, AwsNames
from tamma_trio.store.aws.records import Item, Record, from_item, task_key, to_item

CONDITION_FAILED = "ConditionalCheckFailedException"
BATCH_GET = 100
COUNTER_KEY = "counter#task"


class Tables:
    """The two tables of one deployment, called through ``runner``."""

    def __init__(self, dynamodb: Any, names: AwsNames, runner: Runner) -> None:
        self.db = dynamodb
        self.tasks = names.tasks_table
        self.keys = names.keys_table
        self.runner = runner

    # --- task records -------------------------------------------------------------------------

    async def get(self, task_id: int) -> Record | None:
        answer = await self.runner.run(
            "reading a task",
            lambda: self.db.get_item(
                TableName=self.tasks, Key=task_key(task_id), ConsistentRead=True
            ),
        )
        item = answer.get("Item")
        return from_item(item) if item else None

    async def get_many(self, task_ids: Sequence[int]) -> dict[int, Record]:
        found: dict[int, Record] = {}
        unique = sorted(set(task_ids))
        for start in range(0, len(unique), BATCH_GET):
            keys = [task_key(i) for i in unique[start : start + BATCH_GET]]
            request: dict[str, Any] = {self.tasks: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = await self.runner.run(
                    "reading tasks", partial(self.db.batch_get_item, RequestItems=request)
                )
                for item in answer.get("Responses", {}).get(self.tasks, []):
                    record = from_item(item)
                    found[record.task.id] = record
                request = answer.get("UnprocessedKeys") or {}
        return found

    async def put(self, record: Record, read_ver: int | None) -> bool:
        """Write ``record`` if the stored version is still ``read_ver`` (None: a new item)."""
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(id)"}
        if read_ver is not None:
            condition = {
                "ConditionExpression": "ver = :v",
                "ExpressionAttributeValues": {":v": {"N": str(read_ver)}},
            }
        item = to_item(record)
        return await self._conditional(
            "writing a task", lambda: self.db.put_item(TableName=self.tasks, Item=item, **condition)
        )

    async def delete(self, task_id: int, status: str) -> bool:
        """Delete a task record if it still has ``status``."""
        return await self._conditional(
            "deleting a task",
            partial(
                self.db.delete_item,
                TableName=self.tasks,
                Key=task_key(task_id),
                ConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": status}},
            ),
        )

    async def put_new_many(self, records: Sequence[Record]) -> None:
        """Write records of freshly allocated ids (no one else can know them) 25 per call."""
        for start in range(0, len(records), 25):
            request = {
                self.tasks: [
                    {"PutRequest": {"Item": to_item(r)}} for r in records[start : start + 25]
                ]
            }
            while request:
                answer = await self.runner.run(
                    "writing tasks", partial(self.db.batch_write_item, RequestItems=request)
                )
                request = answer.get("UnprocessedItems") or {}

    async def ids_in(
        self, index: str, hash_name: str, hash_value: str, *, upto: float | None = None
    ) -> list[int]:
        """Task ids of one index partition, in sort order, optionally with sort key <= ``upto``."""
        condition = "#h = :h"
        values: dict[str, Any] = {":h": {"S": hash_value}}
        names = {"#h": hash_name}
        if upto is not None:
            range_name = "due_at" if index == INDEX_BY_DUE else "unsent_at"
            condition += " AND #r <= :r"
            names["#r"] = range_name
            values[":r"] = {"N": repr(upto)}
        items = await self.query(
            IndexName=index,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return [int(item["id"]["N"]) for item in items]

    async def unsent_ids(self, upto: float) -> list[int]:
        return await self.ids_in(INDEX_UNSENT, "unsent", "1", upto=upto)

    async def query(self, *, limit: int | None = None, **params: Any) -> list[dict[str, Any]]:
        """All items of a query (following pages), or the first ``limit``."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self.tasks, **params}
        while True:
            if limit is not None:
                request["Limit"] = limit - len(items)
            answer = await self.runner.run("querying tasks", partial(self.db.query, **request))
            items.extend(answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last or (limit is not None and len(items) >= limit):
                return items
            request["ExclusiveStartKey"] = last

    async def page(
        self, after: dict[str, Any] | None, **params: Any
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a query (at most 1 MB) from ``after``, and where the next one starts."""
        request: dict[str, Any] = {"TableName": self.tasks, **params}
        if after is not None:
            request["ExclusiveStartKey"] = after
        answer = await self.runner.run("querying tasks", partial(self.db.query, **request))
        return list(answer.get("Items", [])), answer.get("LastEvaluatedKey")

    async def count(self, index: str, hash_name: str, hash_value: str) -> int:
        total = 0
        request: dict[str, Any] = {
            "TableName": self.tasks,
            "IndexName": index,
            "Select": "COUNT",
            "KeyConditionExpression": "#h = :h",
            "ExpressionAttributeNames": {"#h": hash_name},
            "ExpressionAttributeValues": {":h": {"S": hash_value}},
        }
        while True:
            answer = await self.runner.run("counting tasks", partial(self.db.query, **request))
            total += int(answer.get("Count", 0))
            if not answer.get("LastEvaluatedKey"):
                return total
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    # --- the keys table -----------------------------------------------------------------------

    async def next_ids(self, count: int, counter: str = COUNTER_KEY) -> range:
        """Reserve ``count`` consecutive task ids (an atomic counter; ids grow over time)."""
        answer = await self.runner.run(
            "allocating task ids",
            lambda: self.db.update_item(
                TableName=self.keys,
                Key={"k": {"S": counter}},
                UpdateExpression="ADD n :c",
                ExpressionAttributeValues={":c": {"N": str(count)}},
                ReturnValues="UPDATED_NEW",
            ),
        )
        last = int(answer["Attributes"]["n"]["N"])
        return range(last - count + 1, last + 1)

    async def get_key(self, key: str) -> dict[str, Any] | None:
        answer = await self.runner.run(
            "reading a key",
            lambda: self.db.get_item(
                TableName=self.keys, Key={"k": {"S": key}}, ConsistentRead=True
            ),
        )
        item = answer.get("Item")
        return dict(item) if item else None

    async def put_key(self, item: Item, condition: str, values: Item | None = None) -> bool:
        extra: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        return await self._conditional(
            "writing a key",
            lambda: self.db.put_item(
                TableName=self.keys, Item=item, ConditionExpression=condition, **extra
            ),
        )

    async def update_key(self, key: str, expression: str, condition: str, values: Item) -> bool:
        return await self._conditional(
            "updating a key",
            lambda: self.db.update_item(
                TableName=self.keys,
                Key={"k": {"S": key}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            ),
        )

    async def put_new_keys(self, items: Sequence[Item], token: str) -> None:
        """Write new keys-table items in one transaction (at most 100): all of them or none.

        ``token`` makes a retried call idempotent for DynamoDB's ten minutes, so a retry after
        a lost answer is not refused by the items it wrote itself.
        """
        actions = [
            {
                "Put": {
                    "TableName": self.keys,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(k)",
                }
            }
            for item in items
        ]
        await self.runner.run(
            "writing keys together",
            partial(self.db.transact_write_items, TransactItems=actions, ClientRequestToken=token),
        )

    async def delete_key(
        self, key: str, condition: str, values: Item | None = None
    ) -> dict[str, Any] | None:
        """Delete if ``condition`` holds; the old item, or None when the condition failed."""
        extra: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        try:
            answer = await self.runner.raw(
                lambda: self.db.delete_item(
                    TableName=self.keys,
                    Key={"k": {"S": key}},
                    ConditionExpression=condition,
                    ReturnValues="ALL_OLD",
                    **extra,
                )
            )
        except Exception as exc:
            if error_code(exc) == CONDITION_FAILED:
                return None
            raise as_store_error("deleting a key", exc) from None
        return dict(answer.get("Attributes", {}))

    async def _conditional(self, what: str, call: Any) -> bool:
        """True when the write happened, False when its condition failed."""
        try:
            await self.runner.raw(call)
        except Exception as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise as_store_error(what, exc) from None
        return True
