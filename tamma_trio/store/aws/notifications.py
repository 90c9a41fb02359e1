"""The service event stream and webhook outbox on AWS: items in the keys table.

An event is one item ``sevent#<id>``, a notification one item ``notification#<id>`` holding its
event; ids come from counters like task ids. Like SQLite's transaction and Redis's script, the
event and its notifications are written together (one TransactWriteItems). Reads scan the keys
table by prefix, which suits the small volumes of an operator's stream once retention prunes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import partial
from typing import Any

from tamma_trio.service_events import (
    NewServiceEvent,
    Notification,
    NotificationStatus,
    PrunedEvents,
    ServiceEvent,
    expired_notifications,
    unreferenced_events,
)
from tamma_trio.store import lifecycle
from tamma_trio.store.aws.tables import Tables

EVENT = "sevent#"
NOTE = "notification#"


async def publish(
    tables: Tables, event: NewServiceEvent, targets: Sequence[str], now: float
) -> ServiceEvent:
    """The event and its deliveries in one transaction, so a crash never keeps one without
    the other; only the ids are reserved before it (a crash then wastes ids, loses nothing)."""
    [number] = await tables.next_ids(1, counter="counter#sevent")
    stored = ServiceEvent(id=number, at=lifecycle.utc(now), **event.model_dump())
    items = [{"k": {"S": f"{EVENT}{number}"}, "doc": {"S": stored.model_dump_json()}}]
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
            items.append(_item(note))
    token = hashlib.sha256(f"{tables.keys}#{EVENT}{number}".encode()).hexdigest()[:36]
    await tables.put_new_keys(items, token=token)
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


async def prune_events(
    tables: Tables, before: float, dead_before: float, limit: int, dry_run: bool
) -> PrunedEvents:
    """Expired deliveries, then events no staying delivery needs (see TaskStore). Each delete
    is conditional on the status it was read in: a delivery retried meanwhile stays, and so
    does its event."""
    notes = [Notification.model_validate_json(i["doc"]["S"]) for i in await _all(tables, NOTE)]
    doomed = expired_notifications(notes, before, dead_before, limit)
    gone = {note.id for note in doomed}
    if not dry_run:
        for note in doomed:
            condition = {":st": {"S": note.status.value}}
            if await tables.delete_key(f"{NOTE}{note.id}", "st = :st", condition) is None:
                gone.discard(note.id)
    staying = [note for note in notes if note.id not in gone]
    found = [ServiceEvent.model_validate_json(i["doc"]["S"]) for i in await _all(tables, EVENT)]
    events = unreferenced_events(found, staying, before, limit)
    if not dry_run:
        for event in events:
            await tables.delete_key(f"{EVENT}{event.id}", "attribute_exists(k)")
    return PrunedEvents(len(events), len(gone))


def _item(note: Notification) -> dict[str, Any]:
    return {
        "k": {"S": f"{NOTE}{note.id}"},
        "doc": {"S": note.model_dump_json()},
        "st": {"S": note.status.value},
    }


async def _put(tables: Tables, note: Notification, was: NotificationStatus) -> bool:
    return await tables.put_key(_item(note), "st = :was", {":was": {"S": was.value}})


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
