"""The SQLite store's deliveries log and per-subject reads: plain functions of the connection.

``add_delivery`` runs in one write operation (one SAVEPOINT of the writer's transaction), so a
delivery is logged if and only if its tasks are stored: a redelivery after a crash either finds
both or neither.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from tamma_trio.delivery import Delivery, DeliveryOutcome, DeliveryRecord
from tamma_trio.store import lifecycle, sqlite_ops
from tamma_trio.store.sqlite_rows import TASK_COLUMNS, NewTaskRow, Row

DELIVERY_COLUMNS = (
    "id, forge, delivery_id, event, action, repository, sender, outcome, reason, body_sha256, "
    "task_ids, received_at"
)
_INSERT = f"""INSERT INTO deliveries ({DELIVERY_COLUMNS.removeprefix("id, ")})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {DELIVERY_COLUMNS}"""
_SELECT = f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE forge = ? AND delivery_id = ?"
_PAGE = f"SELECT {DELIVERY_COLUMNS} FROM deliveries ORDER BY id DESC LIMIT ? OFFSET ?"
_PRUNE = "DELETE FROM deliveries WHERE received_at < ?"
_OF_SUBJECT = f"""SELECT {TASK_COLUMNS} FROM tasks INDEXED BY tasks_subject
    WHERE subject = ? ORDER BY id DESC LIMIT ?"""


def delivery_from_row(row: Row) -> Delivery:
    (id_, forge, delivery_id, event, action, repository, sender, outcome, reason, digest) = row[:10]
    return Delivery(
        id=id_,
        forge=forge,
        delivery_id=delivery_id,
        event=event,
        action=action,
        repository=repository,
        sender=sender,
        outcome=DeliveryOutcome(outcome),
        reason=reason,
        body_sha256=digest,
        task_ids=tuple(json.loads(row[10])),
        received_at=lifecycle.utc(row[11]),
    )


def add_delivery(
    conn: sqlite3.Connection, record: DeliveryRecord, news: Sequence[NewTaskRow], now: float
) -> tuple[Row, list[tuple[Row, bool]]]:
    known: Row | None = conn.execute(_SELECT, (record.forge, record.delivery_id)).fetchone()
    if known is not None:
        return known, []
    added = sqlite_ops.add_tasks(conn, news)
    task_ids = [*record.task_ids, *(row[0] for row, _created in added)]
    values = (
        record.forge,
        record.delivery_id,
        record.event,
        record.action,
        record.repository,
        record.sender,
        record.outcome.value,
        record.reason,
        record.body_sha256,
        json.dumps(task_ids),
        now,
    )
    row: Row = conn.execute(_INSERT, values).fetchone()
    return row, added


def get_delivery(conn: sqlite3.Connection, forge: str, delivery_id: str) -> Row | None:
    row: Row | None = conn.execute(_SELECT, (forge, delivery_id)).fetchone()
    return row


def list_deliveries(conn: sqlite3.Connection, limit: int, offset: int) -> list[Row]:
    return conn.execute(_PAGE, (limit, offset)).fetchall()


def prune_deliveries(conn: sqlite3.Connection, before: float) -> int:
    return conn.execute(_PRUNE, (before,)).rowcount


def tasks_of_subject(conn: sqlite3.Connection, subject: str, limit: int) -> list[Row]:
    return conn.execute(_OF_SUBJECT, (subject, limit)).fetchall()
