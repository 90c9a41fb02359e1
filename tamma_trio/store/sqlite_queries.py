"""The SQLite store's list and chart queries, built from the caller's filters.

Each filter maps onto an index (sqlite_schema.py): status onto ``tasks_by_status``, the
repository onto ``tasks_repository``, ``before`` onto the primary key, so the default pages of
the dashboard and the API read one page of rows, not the table. A text search reads at most
TEXT_SEARCH_WINDOW rows: LIKE with a leading wildcard cannot use an index.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tamma_trio.models import TaskStatus, TaskType
from tamma_trio.store.base import TEXT_SEARCH_WINDOW
from tamma_trio.store.sqlite_rows import TASK_COLUMNS, Row
from tamma_trio.store.sqlite_schema import REPOSITORY_EXPRESSION, SCHEMA_VERSION

_THROUGHPUT = """SELECT CAST((finished_at - ?1) / ?2 AS INTEGER) AS bucket, status, count(*)
    FROM tasks INDEXED BY tasks_finished
    WHERE finished_at IS NOT NULL AND finished_at >= ?1 AND status IN ('completed', 'failed')
    GROUP BY bucket, status ORDER BY bucket"""


# Kept by triggers (sqlite_schema.py), like the counts by status.
_QUEUED_BY_PRIORITY = "SELECT priority, n FROM task_counts WHERE status = 'queued'"


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's own wildcards escaped, so '50%' means a literal percent sign."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(
    status: TaskStatus | None,
    task_type: TaskType | None,
    repository: str | None,
    before: int | None,
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if status is not None:
        clauses.append("status = ?")
        params.append(TaskStatus(status).value)
    if task_type is not None:
        clauses.append("type = ?")
        params.append(TaskType(task_type).value)
    if repository is not None:
        clauses.append(f"{REPOSITORY_EXPRESSION} = ?")
        params.append(repository)
    if before is not None:
        clauses.append("id < ?")
        params.append(before)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def list_tasks(
    conn: sqlite3.Connection,
    status: TaskStatus | None,
    task_type: TaskType | None,
    repository: str | None,
    text: str | None,
    before: int | None,
    limit: int,
    offset: int,
) -> list[Row]:
    where, params = _where(status, task_type, repository, before)
    if text is None:
        sql = f"SELECT {TASK_COLUMNS} FROM tasks {where} ORDER BY id DESC LIMIT ? OFFSET ?"
        return conn.execute(sql, (*params, limit, offset)).fetchall()
    # The window's oldest id comes from the index alone (OFFSET walks index entries, not rows);
    # the search then reads rows newest first and stops at the page's last match.
    floor = f"SELECT id FROM tasks {where} ORDER BY id DESC LIMIT 1 OFFSET {TEXT_SEARCH_WINDOW - 1}"
    joiner = "AND" if where else "WHERE"
    sql = f"""SELECT {TASK_COLUMNS} FROM tasks {where}
        {joiner} id >= coalesce(({floor}), 0)
        AND (payload LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\'
             OR result LIKE ? ESCAPE '\\')
        ORDER BY id DESC LIMIT ? OFFSET ?"""
    pattern = like_pattern(text)
    values = (*params, *params, pattern, pattern, pattern, limit, offset)
    return conn.execute(sql, values).fetchall()


def throughput(
    conn: sqlite3.Connection, since: float, bucket_seconds: int
) -> list[tuple[int, str, int]]:
    """(bucket index, status, count) rows, read from the covering index tasks_finished."""
    return conn.execute(_THROUGHPUT, (since, bucket_seconds)).fetchall()


def queued_by_priority(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    return conn.execute(_QUEUED_BY_PRIORITY).fetchall()


def select_one(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()


def describe(conn: sqlite3.Connection) -> dict[str, Any]:
    """The file's settings as this connection sees them (synchronous is per connection)."""

    def pragma(name: str) -> Any:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]

    return {
        "journal_mode": pragma("journal_mode"),
        "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[pragma("synchronous")],
        "application_id": pragma("application_id"),
        "schema_version": pragma("user_version"),
        "schema_version_expected": SCHEMA_VERSION,
    }
