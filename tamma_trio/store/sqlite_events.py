"""SQL of the service event stream and the webhook outbox (see TaskStore.publish and after).

Functions of the connection, run by the store's runner like sqlite_ops; rows are turned into
models on the caller's thread by the two ``*_from_row`` functions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import pydantic_core

from tamma_trio.service_events import EventKind, Notification, NotificationStatus, ServiceEvent
from tamma_trio.store.lifecycle import utc, utc_or_none
from tamma_trio.store.sqlite_housekeeping import vacuum_some

Row = tuple[Any, ...]

EVENT_COLUMNS = (
    "e.id, e.at, e.kind, e.task_id, e.task_type, e.repository, e.subject, e.reason, e.detail"
)
DELIVERY_COLUMNS = (
    "d.id, d.target, d.status, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at"
)
_JOINED = (
    f"SELECT {DELIVERY_COLUMNS}, {EVENT_COLUMNS}"
    " FROM notifications d JOIN service_events e ON e.id = d.event_id"
)


def publish(conn: sqlite3.Connection, event: Row, targets: Sequence[str], now: float) -> int:
    (event_id,) = conn.execute(
        "INSERT INTO service_events (at, kind, task_id, task_type, repository, subject, reason,"
        " detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        event,
    ).fetchone()
    conn.executemany(
        "INSERT INTO notifications (event_id, target, status, next_attempt_at) VALUES (?, ?, ?, ?)",
        [(event_id, target, NotificationStatus.PENDING.value, now) for target in targets],
    )
    return int(event_id)


def events_after(conn: sqlite3.Connection, after: int, limit: int) -> list[Row]:
    return conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM service_events e WHERE e.id > ? ORDER BY e.id LIMIT ?",
        (after, limit),
    ).fetchall()


def select_notifications(
    conn: sqlite3.Connection, status: NotificationStatus | None, limit: int
) -> list[Row]:
    if status is NotificationStatus.PENDING:
        where, order = "WHERE d.status = 'pending'", "d.next_attempt_at, d.id"
    elif status is not None:
        where, order = f"WHERE d.status = '{status.value}'", "d.id DESC"
    else:
        where, order = "", "d.id DESC"
    return conn.execute(f"{_JOINED} {where} ORDER BY {order} LIMIT ?", (limit,)).fetchall()


def record_notification(
    conn: sqlite3.Connection,
    delivery_id: int,
    error: str | None,
    next_attempt: float | None,
    now: float,
) -> None:
    if error is None:
        conn.execute(
            "UPDATE notifications SET status = 'delivered', delivered_at = ?"
            " WHERE id = ? AND status = 'pending'",
            (now, delivery_id),
        )
        return
    conn.execute(
        "UPDATE notifications SET attempts = attempts + 1, last_error = ?, status = ?,"
        " next_attempt_at = ? WHERE id = ? AND status = 'pending'",
        (error, "pending" if next_attempt else "dead", next_attempt, delivery_id),
    )


def renotify(conn: sqlite3.Connection, delivery_ids: Sequence[int] | None, now: float) -> int:
    update = (
        "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = ?"
        " WHERE status = 'dead'"
    )
    if delivery_ids is None:
        return conn.execute(update, (now,)).rowcount
    return sum(
        conn.execute(update + " AND id = ?", (now, delivery_id)).rowcount
        for delivery_id in delivery_ids
    )


def event_from_row(row: Row) -> ServiceEvent:
    event_id, at, kind, task_id, task_type, repository, subject, reason, detail = row
    return ServiceEvent(
        id=event_id,
        at=utc(at),
        kind=EventKind(kind),
        task_id=task_id,
        task_type=task_type,
        repository=repository,
        subject=subject,
        reason=reason,
        detail=pydantic_core.from_json(detail),
    )


def notification_from_row(row: Row) -> Notification:
    delivery_id, target, status, attempts, next_attempt, last_error, delivered = row[:7]
    return Notification(
        id=delivery_id,
        event=event_from_row(row[7:]),
        target=target,
        status=NotificationStatus(status),
        attempts=attempts,
        next_attempt_at=utc_or_none(next_attempt),
        last_error=last_error,
        delivered_at=utc_or_none(delivered),
    )


_EXPIRED = """(d.status = 'delivered' AND d.delivered_at < :before)
    OR (d.status = 'dead' AND d.event_id IN (SELECT id FROM service_events WHERE at < :dead))"""
_OLD_EVENTS = """SELECT e.id FROM service_events e WHERE e.at < :before AND NOT EXISTS
    (SELECT 1 FROM notifications d WHERE d.event_id = e.id {keep}) ORDER BY e.id LIMIT :limit"""


def prune_events(
    conn: sqlite3.Connection, before: float, dead_before: float, limit: int, dry_run: bool
) -> tuple[int, int]:
    """(events, notifications) deleted, or counted when ``dry_run`` (see TaskStore)."""
    marks = {"before": before, "dead": dead_before, "limit": limit}
    notes = [
        (row[0],)
        for row in conn.execute(
            f"SELECT d.id FROM notifications d WHERE {_EXPIRED} ORDER BY d.id LIMIT :limit", marks
        )
    ]
    if dry_run:  # an event goes when every delivery of it would go
        query = _OLD_EVENTS.format(keep=f"AND NOT ({_EXPIRED})")
        return len(conn.execute(query, marks).fetchall()), len(notes)
    conn.executemany("DELETE FROM notifications WHERE id = ?", notes)
    events = [(row[0],) for row in conn.execute(_OLD_EVENTS.format(keep=""), marks)]
    conn.executemany("DELETE FROM service_events WHERE id = ?", events)
    if events or notes:
        vacuum_some(conn)
    return len(events), len(notes)
