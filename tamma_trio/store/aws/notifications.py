"""The service event stream and webhook outbox on AWS: items in the keys table.

An event is one item ``sevent#<id>``, a notification one item ``notification#<id>`` holding its
event; ids come from counters like task ids. Unlike SQLite and Redis, the event and its
notifications are separate writes (notifications first is not possible: they carry the event's
id), so a crash between them can lose a notification of a recorded event. Reads scan the keys
table by prefix, which suits the small volumes of an operator's stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tamma_trio.service_events import (
    NewServiceEvent,
    Notification,
    NotificationStatus,
    ServiceEvent,
)
from tamma_trio.store import lifecycle
from tamma_trio.store.aws.tables import Tables

EVENT = "sevent#"
NOTE = "notification#"


async def publish(
    tables: Tables, event: NewServiceEvent, targets: Sequence[str], now: float
) -> ServiceEvent:
    [number] = await tables.next_ids(1, counter="counter#sevent")
    stored = ServiceEvent(id=number, at=lifecycle.utc(now), **event.model_dump())
    item = {"k": {"S": f"{EVENT}{number}"}, "doc": {"S": stored.model_dump_json()}}
    await tables.put_key(item, "attribute_not_exists(k)")
    if targets:
        ids = await tables.next_ids(len(targets), counter="counter#notification")
        for note_id, target in zip(ids, targets, strict=True):
            note = Notification(
                id=note_id,
                event=stored,
                target=target,
                status=NotificationStatus.PENDING,
                next_attempt_at=lifecycle.utc(now),
            )
            await _put(tables, note, None)
    return stored


async def events_after(tables: Tables, after: int, limit: int) -> list[ServiceEvent]:
    found = [ServiceEvent.model_validate_json(i["doc"]["S"]) for i in await _all(tables, EVENT)]
    return sorted((e for e in found if e.id > after), key=lambda e: e.id)[:limit]


async def select(
    tables: Tables, status: NotificationStatus | None, limit: int
) -> list[Notification]:
    notes = [Notification.model_validate_json(i["doc"]["S"]) for i in await _all(tables, NOTE)]
    chosen = [n for n in notes if status is None or n.status is status]
    if status is NotificationStatus.PENDING:
        chosen.sort(key=lambda n: (n.next_attempt_at or lifecycle.utc(0), n.id))
    else:
        chosen.sort(key=lambda n: n.id, reverse=True)
    return chosen[:limit]


async def record(
    tables: Tables, note_id: int, error: str | None, next_attempt: float | None, now: float
) -> None:
    note = await _get(tables, note_id)
    if note is None or note.status is not NotificationStatus.PENDING:
        return
    change: dict[str, Any]
    if error is None:
        change = {"status": NotificationStatus.DELIVERED, "delivered_at": lifecycle.utc(now)}
    else:
        change = {
            "attempts": note.attempts + 1,
            "last_error": error,
            "status": NotificationStatus.PENDING if next_attempt else NotificationStatus.DEAD,
            "next_attempt_at": lifecycle.utc(next_attempt) if next_attempt else None,
        }
    await _put(tables, note.model_copy(update=change), NotificationStatus.PENDING)


async def renotify(tables: Tables, note_ids: Sequence[int] | None, now: float) -> int:
    dead = await select(tables, NotificationStatus.DEAD, 1_000_000)
    wanted = None if note_ids is None else set(note_ids)
    count = 0
    for note in dead:
        if wanted is None or note.id in wanted:
            again = note.model_copy(
                update={
                    "status": NotificationStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": lifecycle.utc(now),
                }
            )
            count += await _put(tables, again, NotificationStatus.DEAD)
    return count


async def _get(tables: Tables, note_id: int) -> Notification | None:
    item = await tables.get_key(f"{NOTE}{note_id}")
    return Notification.model_validate_json(item["doc"]["S"]) if item else None


async def _put(tables: Tables, note: Notification, was: NotificationStatus | None) -> bool:
    item = {
        "k": {"S": f"{NOTE}{note.id}"},
        "doc": {"S": note.model_dump_json()},
        "st": {"S": note.status.value},
    }
    if was is None:
        return await tables.put_key(item, "attribute_not_exists(k)")
    return await tables.put_key(item, "st = :was", {":was": {"S": was.value}})


async def _all(tables: Tables, prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": tables.keys,
        "FilterExpression": "begins_with(k, :p)",
        "ExpressionAttributeValues": {":p": {"S": prefix}},
        "ConsistentRead": True,
    }
    while True:
        answer = await tables.runner.run("listing events", partial(tables.db.scan, **request))
        items.extend(answer.get("Items", []))
        if not answer.get("LastEvaluatedKey"):
            return items
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
